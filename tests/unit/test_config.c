/* placeholder until the config tests land */
int main(void)
{
    return 0;
}
