/* Test application for `envseal exec --watch`.
 *
 *   watched [--ignore-term | --slow-term]
 *
 * On start prints "start PID VALUE FILE" and on every SIGHUP "hup PID VALUE
 * FILE", where VALUE is $WATCHED (or "-") and FILE the first line of the file
 * named by $WATCHED_FILE (or "-"), read again each time. On SIGTERM it exits
 * with 42 (after printing "term PID"; with --slow-term two seconds later),
 * unless --ignore-term (then only SIGKILL stops it). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void report(const char *what) {
    const char *value = getenv("WATCHED");
    const char *path = getenv("WATCHED_FILE");
    char line[256] = "-";
    if (path) {
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(line, sizeof line, f))
                strcpy(line, "(empty)");
            line[strcspn(line, "\n")] = 0;
            fclose(f);
        } else {
            strcpy(line, "(unreadable)");
        }
    }
    printf("%s %d %s %s\n", what, (int)getpid(), value ? value : "-", line);
    fflush(stdout);
}

int main(int argc, char **argv) {
    int ignore_term = argc > 1 && strcmp(argv[1], "--ignore-term") == 0;
    int slow_term = argc > 1 && strcmp(argv[1], "--slow-term") == 0;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    report("start");
    for (;;) {
        int sig = sigwaitinfo(&set, NULL);
        if (sig == SIGHUP)
            report("hup");
        else if (sig == SIGTERM && !ignore_term) {
            printf("term %d\n", (int)getpid());
            fflush(stdout);
            if (slow_term)
                sleep(2);
            exit(42);
        }
    }
}
