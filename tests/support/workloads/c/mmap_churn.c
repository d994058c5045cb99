/* Threads that map, touch and unmap 64 KiB in a loop: kernel lock waits (mmap_lock), not futexes.
 * usage: mmap_churn <threads (1-16)>; ends by itself after LIFETIME_S s (-D, 20). */
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#ifndef LIFETIME_S
#define LIFETIME_S 20
#endif
static void *run(void *arg) {
    time_t end = time(0) + LIFETIME_S; /* a leaked workload ends by itself */
    (void)arg;
    while (time(0) < end) {
        char *p = mmap(0, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        p[0] = 1;
        p[8192] = 1;
        munmap(p, 1 << 16);
    }
    return 0;
}
int main(int argc, char **argv) {
    int n = atoi(argv[1]);
    pthread_t t[16];
    for (int i = 0; i < n && i < 16; i++) pthread_create(&t[i], 0, run, 0);
    pthread_join(t[0], 0);
    return 0;
}
