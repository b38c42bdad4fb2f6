/* placeholder until the audit tests land */
int main(void)
{
    return 0;
}
