/* Busy loop for at most 60 s (a leaked process ends by itself; the probe may compile slowly). */
#include <time.h>
int main(void) {
    volatile unsigned long x = 0;
    time_t end = time(0) + 60;
    for (;;) {
        for (int i = 0; i < 10000000; i++) x += i;
        if (time(0) > end) return 0;
    }
}
