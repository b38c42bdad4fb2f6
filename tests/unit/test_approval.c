/* placeholder until the approval tests land */
int main(void)
{
    return 0;
}
