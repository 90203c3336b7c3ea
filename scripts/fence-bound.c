// How fast can a fenced x86-64 litmus test run on this machine with no harness at all?
// (A reference for issue 14 item 7, which asks atomprobe for 5x litmus7's iterations/s; built
// and run by scripts/bench-fence-bound, a benchmark, not a test.)
//
// Two threads pinned to two CPUs run batches of N instances of one test back to back, each
// instance on its own locations (4-byte slots, 16 instances a line, as atomprobe's packed
// layout), released together by a flag the first thread sets; that thread then waits DELAY TSC
// ticks, so that the second (which sees the flag late) starts level with it. After each batch
// the first thread alone counts the outcomes and resets the locations. Nothing else: no
// per-instance bookkeeping beyond the register each load writes to an array.
//
// Printed per test and DELAY: instances a second over the wall clock (counting and resetting
// included) and over the batches' run phases only (the most any harness could reach), the share
// of instances off the most common outcome (how often the threads' accesses interleaved other
// than one thread's all before the other's), and the outcome counts.
//
// Before the tests, two costs the rates are made of: a cache line's round trip between the two
// CPUs (one thread stores a number to a line, the other waits for it and answers on a second
// line), and one uncontended `x = 1; MFENCE; r = y` on lines this CPU alone touches.
//
// Tests (herdtools7 catalogue, x86_64):
//   SB+mfences:  P0: x=1; MFENCE; r0=y     P1: y=1; MFENCE; r1=x
//   R+po+mfence: P0: x=1; y=1              P1: y=2; MFENCE; r1=x       (outcome r1 and [y])
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>

#define N 1024        // instances a batch (atomprobe's long batch)
#define BATCHES 8192  // 8 M instances a run

enum test { SB_MFENCES, R_PO_MFENCE };

static volatile uint32_t X[N] __attribute__((aligned(64)));
static volatile uint32_t Y[N] __attribute__((aligned(64)));
static uint32_t r0[N], r1[N];
static volatile uint64_t go __attribute__((aligned(64)));
static volatile uint64_t done __attribute__((aligned(64)));
static enum test which;

static void pin(int cpu) {
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    if (pthread_setaffinity_np(pthread_self(), sizeof s, &s) != 0) {
        fprintf(stderr, "fence-bound: cannot pin a thread to CPU %d (needs 2 CPUs)\n", cpu);
        exit(2);
    }
}

static void *second(void *arg) {
    (void)arg;
    pin(1);
    for (uint64_t b = 1; b <= BATCHES; b++) {
        while (go != b) {
        }
        for (int i = 0; i < N; i++) {
            Y[i] = which == SB_MFENCES ? 1 : 2;
            _mm_mfence();
            r1[i] = X[i];
        }
        done = b;
    }
    return NULL;
}

static void run(enum test t, uint64_t delay) {
    which = t;
    go = done = 0;
    memset((void *)X, 0, sizeof X);
    memset((void *)Y, 0, sizeof Y);
    pthread_t th;
    pthread_create(&th, NULL, second, NULL);
    uint64_t counts[8] = {0}, run_ticks = 0;
    struct timespec a, z;
    clock_gettime(CLOCK_MONOTONIC, &a);
    uint64_t wall0 = __rdtsc();
    for (uint64_t b = 1; b <= BATCHES; b++) {
        uint64_t t0 = __rdtsc();
        go = b;
        while (__rdtsc() - t0 < delay) {
        }
        for (int i = 0; i < N; i++) {
            X[i] = 1;
            if (t == SB_MFENCES) {
                _mm_mfence();
                r0[i] = Y[i];
            } else {
                Y[i] = 1;
            }
        }
        while (done != b) {
        }
        run_ticks += __rdtsc() - t0;
        for (int i = 0; i < N; i++) {
            // SB+mfences: r0, r1; R+po+mfence: r1, final [y] (1 or 2).
            unsigned o = t == SB_MFENCES ? r0[i] * 2 + r1[i] : r1[i] * 2 + (Y[i] - 1);
            counts[o & 7]++;
            X[i] = 0;
            Y[i] = 0;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &z);
    uint64_t wall_ticks = __rdtsc() - wall0;
    pthread_join(th, NULL);
    double secs = (z.tv_sec - a.tv_sec) + (z.tv_nsec - a.tv_nsec) / 1e9;
    double total = (double)N * BATCHES, most = 0;
    for (int o = 0; o < 4; o++)
        if (counts[o] > most) most = counts[o];
    double run_secs = secs * run_ticks / wall_ticks;
    printf("%-12s delay %4llu: %5.1f M it/s wall, %5.1f M it/s run phase; off the most common "
           "outcome %4.1f %%; ",
           t == SB_MFENCES ? "SB+mfences" : "R+po+mfence", (unsigned long long)delay,
           total / secs / 1e6, total / run_secs / 1e6, 100.0 * (total - most) / total);
    if (t == SB_MFENCES)
        printf("r0=0,r1=0 %llu  0,1 %llu  1,0 %llu  1,1 %llu\n", (unsigned long long)counts[0],
               (unsigned long long)counts[1], (unsigned long long)counts[2],
               (unsigned long long)counts[3]);
    else
        printf("r1=0,[y]=1 %llu  0,2 %llu  1,1 %llu  1,2 %llu\n", (unsigned long long)counts[0],
               (unsigned long long)counts[1], (unsigned long long)counts[2],
               (unsigned long long)counts[3]);
}

// Ping-pong between the two CPUs (`second_pong` answers on PONG what it reads on PING).
static volatile uint64_t ping __attribute__((aligned(64)));
static volatile uint64_t pong __attribute__((aligned(64)));
#define TRIPS 400000

static void *second_pong(void *arg) {
    (void)arg;
    pin(1);
    for (uint64_t i = 1; i <= TRIPS; i++) {
        while (ping != i) {
        }
        pong = i;
    }
    return NULL;
}

static void costs(void) {
    ping = pong = 0;
    pthread_t th;
    pthread_create(&th, NULL, second_pong, NULL);
    uint64_t t0 = __rdtsc();
    for (uint64_t i = 1; i <= TRIPS; i++) {
        ping = i;
        while (pong != i) {
        }
    }
    double trip = (double)(__rdtsc() - t0) / TRIPS;
    pthread_join(th, NULL);
    // Uncontended: X and Y, not yet touched by a test, are this CPU's alone. Both are volatile,
    // so every load stays in the loop; X is zeroed again for the tests.
    t0 = __rdtsc();
    for (int k = 0; k < 1000; k++)
        for (int i = 0; i < N; i++) {
            X[i] = 1;
            _mm_mfence();
            r0[i] = Y[i];
        }
    double fenced = (double)(__rdtsc() - t0) / (1000.0 * N);
    memset((void *)X, 0, sizeof X);
    printf("line round trip between the CPUs: %.0f TSC ticks; uncontended x=1; MFENCE; r=y: %.1f "
           "ticks\n",
           trip, fenced);
}

int main(void) {
    pin(0);
    costs();
    static const uint64_t delays[] = {0, 200, 400, 600, 700, 800, 900, 1000, 1200, 1600};
    for (int t = SB_MFENCES; t <= R_PO_MFENCE; t++)
        for (size_t d = 0; d < sizeof delays / sizeof delays[0]; d++) run(t, delays[d]);
    return 0;
}
