/* Test application for envseal's container tests: prints its environment,
 * one NAME=VALUE per line, and exits 0. Built with `gcc -static` so that it
 * runs in an empty root next to a static envseal. */
#include <stdio.h>

extern char **environ;

int main(void) {
    for (char **e = environ; *e; e++)
        puts(*e);
    return 0;
}
