/* placeholder until the exec tests land */
int main(void)
{
    return 0;
}
