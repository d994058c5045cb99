/* Two threads call compute_step in a loop for about one second, then the process exits.
 * Build it with frame pointers (-O0 -fno-omit-frame-pointer) so its stacks unwind. */
#include <pthread.h>
#include <stdio.h>
#include <time.h>

__attribute__((noinline)) unsigned long compute_step(unsigned long x) {
    for (int i = 0; i < 1000; i++) x = x * 6364136223846793005UL + 1442695040888963407UL;
    return x;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) void *spin(void *arg) {
    unsigned long x = (unsigned long)arg;
    double end = now() + 1.0;
    while (now() < end)
        for (int i = 0; i < 1000; i++) x = compute_step(x);
    printf("%lu\n", x);
    return 0;
}

int main(void) {
    pthread_t other;
    pthread_create(&other, 0, spin, (void *)1);
    spin((void *)2);
    pthread_join(other, 0);
    return 0;
}
