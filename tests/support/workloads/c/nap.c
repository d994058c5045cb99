/* Sleeps 2 ms, NAPS times (-D, thirty thousand: 60 s at most). */
#include <time.h>
#ifndef NAPS
#define NAPS 30000
#endif
int main(void) {
    struct timespec ts = {0, 2000000};
    for (int i = 0; i < NAPS; i++) nanosleep(&ts, 0);
    return 0;
}
