/* placeholder until the intent tests land */
int main(void)
{
    return 0;
}
