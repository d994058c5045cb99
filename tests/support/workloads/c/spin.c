/* Busy loop for at most LIFETIME_S s (-D, 60) (a leaked process ends by itself; the probe may compile slowly). */
#include <time.h>
#ifndef LIFETIME_S
#define LIFETIME_S 60
#endif
int main(void) {
    volatile unsigned long x = 0;
    time_t end = time(0) + LIFETIME_S;
    for (;;) {
        for (int i = 0; i < 10000000; i++) x += i;
        if (time(0) > end) return 0;
    }
}
