/* progress.c: how far a long command has got (see progress.h) */
#include "tools/progress.h"

#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void progress_begin(progress *p, const char *what, uint64_t total)
{
    *p = (progress){.what = what, .tty = isatty(STDERR_FILENO) == 1, .total = total};
    p->start = p->last = now();
}

/* "1:02:03" or "2:03" for S seconds. */
static void clock_text(double s, char *out, size_t len)
{
    uint64_t t = s > 0 ? (uint64_t)(s + 0.5) : 0;
    if (t >= 3600)
        snprintf(out, len, "%" PRIu64 ":%02u:%02u", t / 3600, (unsigned)(t / 60 % 60),
                 (unsigned)(t % 60));
    else
        snprintf(out, len, "%u:%02u", (unsigned)(t / 60), (unsigned)(t % 60));
}

static void draw(progress *p, double t, uint64_t msgs, uint64_t bytes, uint64_t done)
{
    double secs = t - p->start;
    double rate = secs > 0.05 ? (double)msgs / secs : 0,
           mbps = secs > 0.05 ? bytes / 1e6 / secs : 0;
    char pct[16] = "", left[40] = "";
    if (p->total) {
        double f = done >= p->total ? 1.0 : (double)done / (double)p->total;
        snprintf(pct, sizeof pct, "%5.1f%%  ", 100 * f);
        if (f > 0 && f < 1 && secs > 0.5) {
            char c[24];
            clock_text(secs * (1 - f) / f, c, sizeof c);
            snprintf(left, sizeof left, ", %s left", c);
        }
    }
    char took[24];
    clock_text(secs, took, sizeof took);
    if (p->tty) {
        int bar =
            p->total ? (int)(20.0 * (done >= p->total ? 1.0 : (double)done / (double)p->total)) : 0;
        fprintf(stderr,
                "\r\033[K[%.*s%*s] %s%" PRIu64
                " messages, %.1f MB, %.0f msg/s, %.1f MB/s, %s elapsed%s",
                bar, "####################", 20 - bar, "", pct, msgs, (double)bytes / 1e6, rate,
                mbps, took, left);
        p->drawn = true;
    } else {
        fprintf(stderr,
                "mailfs: %s: %s%" PRIu64 " messages, %.1f MB, %.0f msg/s, %.1f MB/s, %s elapsed%s\n",
                p->what, pct, msgs, (double)bytes / 1e6, rate, mbps, took, left);
    }
    fflush(stderr);
    p->last = t;
    p->lines++;
}

void progress_show(progress *p, uint64_t msgs, uint64_t bytes, uint64_t done, bool batch)
{
    double t = now();
    /* elsewhere the first batch always gets its line: a short run says how fast it went */
    bool due = p->tty ? t - p->last >= 0.1 : batch && (!p->lines || t - p->last >= 2.0);
    if (due) draw(p, t, msgs, bytes, done);
}

void progress_end(progress *p, uint64_t msgs, uint64_t bytes, uint64_t done)
{
    if (!p->tty) return;
    draw(p, now(), msgs, bytes, done);
    fputc('\n', stderr);
    p->drawn = false;
}
