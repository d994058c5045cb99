/* Allocate, touch every byte, exit. usage: touch_memory <MiB> */
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    size_t size = (size_t)atoi(argv[1]) << 20;
    char *p = malloc(size);
    if (!p) return 1;
    memset(p, 1, size);
    return p[size - 1] == 1 ? 0 : 2;
}
