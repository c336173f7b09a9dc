/* The memory figures under the engine's 10^6-session target (README "Speed", RESULTS
 * "Epochs of 512 buckets, and what the 10^6 target would take on this machine"):
 * K independent chains of dependent random 64-byte line reads over a region of S MB
 * (2 MB aligned, MADV_HUGEPAGE or not): CPU ns per line read, i.e. the per-line cost at
 * a memory-level parallelism of K.
 *   cc -O2 -o /tmp/mem_chase benchmarks/mem_chase.c
 *   for k in 1 4 8 16 32; do /tmp/mem_chase 256 $k 1; done */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
static uint64_t s = 88172645463325252ULL;
static uint64_t rnd(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }
int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: mem_chase SIZE_MB K(1-64) HUGE(0/1)\n"); return 2; }
    size_t mb = atol(argv[1]); int K = atoi(argv[2]); int huge = atoi(argv[3]);
    if (mb < 1 || K < 1 || K > 64) { fprintf(stderr, "SIZE_MB >= 1, K in 1..64\n"); return 2; }
    size_t bytes = mb << 20, n = bytes / 64;
    char *raw = mmap(NULL, bytes + (2 << 20), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *p = (char *)(((uintptr_t)raw + (2 << 20) - 1) & ~(uintptr_t)((2 << 20) - 1));
    madvise(p, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    uint64_t *perm = malloc(sizeof(uint64_t) * n);
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = n - 1; i > 0; i--) { size_t j = rnd() % (i + 1); uint64_t t = perm[i]; perm[i] = perm[j]; perm[j] = t; }
    /* one cycle through all lines */
    for (size_t i = 0; i < n; i++) *(uint64_t *)(p + perm[i] * 64) = perm[(i + 1) % n] * 64;
    uint64_t cur[64]; for (int k = 0; k < K; k++) cur[k] = perm[(n / K) * k] * 64;
    size_t steps = (size_t)4e7 / K; if (steps > n / K) steps = n / K * 2;
    struct timespec a, b; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    for (size_t i = 0; i < steps; i++)
        for (int k = 0; k < K; k++) cur[k] = *(uint64_t *)(p + cur[k]);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    double ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / (double)(steps * K);
    uint64_t x = 0; for (int k = 0; k < K; k++) x ^= cur[k];
    printf("%5zu MB K=%2d huge=%d: %6.1f ns per line (%llu)\n", mb, K, huge, ns, (unsigned long long)(x & 1));
    return 0;
}
