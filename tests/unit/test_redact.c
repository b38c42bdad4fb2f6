/* placeholder until the redact tests land */
int main(void)
{
    return 0;
}
