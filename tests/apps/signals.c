/* Test application for `envseal exec --init`: reports the signals it receives.
 *
 *   signals [--fork] [EXIT_SIGNAL]
 *
 * Blocks every signal and prints "ready PID PGID"; with --fork it first starts
 * a copy of itself that prints "grand ready PID PGID". Then it prints
 * "got N" (the copy: "grand got N") for every signal it receives, SIGCHLD
 * included. On EXIT_SIGNAL (default 15, SIGTERM) it exits with 100 + N; the
 * first process waits up to a second for the copy, then kills it. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void finish(int code, pid_t grand) {
    if (grand > 0) {
        for (int i = 0; i < 100; i++) {
            if (waitpid(grand, NULL, WNOHANG) == grand) {
                grand = 0;
                break;
            }
            struct timespec ten_ms = {0, 10 * 1000 * 1000};
            nanosleep(&ten_ms, NULL);
        }
        if (grand > 0) {
            kill(grand, SIGKILL);
            waitpid(grand, NULL, 0);
        }
    }
    exit(code);
}

static void report(const char *label, int exit_signal, pid_t grand) {
    sigset_t all;
    sigfillset(&all);
    for (;;) {
        int sig = sigwaitinfo(&all, NULL);
        if (sig < 0)
            continue;
        printf("%sgot %d\n", label, sig);
        if (sig == exit_signal)
            finish(100 + sig, grand);
    }
}

int main(int argc, char **argv) {
    int with_grand = 0;
    int exit_signal = SIGTERM;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--fork") == 0)
            with_grand = 1;
        else
            exit_signal = atoi(argv[i]);
    }
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    pid_t grand = 0;
    if (with_grand) {
        grand = fork();
        if (grand == 0) {
            printf("grand ready %d %d\n", (int)getpid(), (int)getpgrp());
            report("grand ", exit_signal, 0);
        }
    }
    printf("ready %d %d\n", (int)getpid(), (int)getpgrp());
    report("", exit_signal, grand);
    return 0;
}
