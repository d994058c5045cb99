/* Sleeps 2 ms, thirty thousand times (60 s at most). */
#include <time.h>
int main(void) {
    struct timespec ts = {0, 2000000};
    for (int i = 0; i < 30000; i++) nanosleep(&ts, 0);
    return 0;
}
