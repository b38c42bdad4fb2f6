/* placeholder until the store tests land */
int main(void)
{
    return 0;
}
