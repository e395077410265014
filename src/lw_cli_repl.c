/*
** lw_cli_repl.c — the interactive prompt (placeholder)
*/
#include "lw_cli.h"

void lw_cli_repl(lw_cli *c) { (void)c; }
