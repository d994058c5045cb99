/* Threads that take turns on one pthread mutex, each holding it a while: futex contention.
 * usage: mutex_contention [threads (1-16), 8] [hold_us, 200] [lifetime_s, 3600]
 * It ends by itself after lifetime_s, so a leaked workload does not run on. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct timespec hold;
static time_t end;

static void *work(void *arg) {
    (void)arg;
    while (time(0) < end) {
        pthread_mutex_lock(&lock);
        nanosleep(&hold, 0);
        pthread_mutex_unlock(&lock);
    }
    return 0;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 8;
    long hold_us = argc > 2 ? atol(argv[2]) : 200;
    hold.tv_sec = hold_us / 1000000;
    hold.tv_nsec = (hold_us % 1000000) * 1000;
    end = time(0) + (argc > 3 ? atol(argv[3]) : 3600);
    pthread_t threads[16];
    if (n < 1) n = 1;
    if (n > 16) n = 16;
    for (int i = 0; i < n; i++) pthread_create(&threads[i], 0, work, 0);
    pthread_join(threads[0], 0);
    return 0;
}
