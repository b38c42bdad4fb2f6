#ifndef OPSBOT_CLI_H
#define OPSBOT_CLI_H

/* The command line: run, console, check-config, policy explain, audit
 * verify|export. Returns the process exit status. */
int ob_cli_main(int argc, char **argv);

#endif
