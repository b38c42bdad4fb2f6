/* placeholder until the policy tests land */
int main(void)
{
    return 0;
}
