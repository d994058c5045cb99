/* Write <chunks> blocks of 4 KiB to <path>, then exit. usage: write_chunks <path> <chunks> */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char buf[4096];
    memset(buf, 'x', sizeof(buf));
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return 1;
    for (int i = 0; i < atoi(argv[2]); i++)
        if (write(fd, buf, sizeof(buf)) != sizeof(buf)) return 2;
    close(fd);
    return 0;
}
