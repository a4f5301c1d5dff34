/* progress.h: how far a long command (import, export) has got, on stderr: one line redrawn in
 * place on a terminal, a plain line per batch otherwise (a log, a pipe, cron's mail) */
#ifndef MAILFS_PROGRESS_H
#define MAILFS_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct progress {
    const char *what; /* the command: "import", "export" */
    bool tty;         /* stderr is a terminal */
    uint64_t total;   /* the work in all, in bytes (0: not known: no percentage, no time left) */
    double start;     /* when it began (CLOCK_MONOTONIC seconds) */
    double last;      /* when the last line was written */
    bool drawn;       /* a terminal line is on the screen without its newline */
    unsigned lines;   /* lines written */
} progress;

/* Starts measuring: WHAT names the command, TOTAL the bytes of work there will be. */
void progress_begin(progress *p, const char *what, uint64_t total);

/* MSGS messages of BYTES bytes done, DONE of the TOTAL bytes of work. On a terminal it redraws
 * at most 10 times a second; elsewhere it writes a line only at the end of a batch (BATCH),
 * the first one and then at most one every 2 seconds. Each shows the messages, MB, the rate, the
 * percentage and the time left when TOTAL is known. */
void progress_show(progress *p, uint64_t msgs, uint64_t bytes, uint64_t done, bool batch);

/* The last figures: on a terminal the line is drawn once more and ended; elsewhere nothing
 * (the command prints its summary). */
void progress_end(progress *p, uint64_t msgs, uint64_t bytes, uint64_t done);

#endif
