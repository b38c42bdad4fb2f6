/* placeholder until the catalog tests land */
int main(void)
{
    return 0;
}
