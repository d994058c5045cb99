/* Every round: 100 opens of a missing file, then 5 connects to a closed port; ends after
 * LIFETIME_S s (-D, 20).
 * usage: error_storm <missing path> <closed port> */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifndef LIFETIME_S
#define LIFETIME_S 20
#endif
int main(int argc, char **argv) {
    struct sockaddr_in to = {0};
    to.sin_family = AF_INET;
    to.sin_port = htons(atoi(argv[2]));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    time_t end = time(0) + LIFETIME_S;
    while (time(0) < end) {
        for (int i = 0; i < 100; i++) {
            int fd = open(argv[1], O_RDONLY);
            if (fd >= 0) close(fd);
        }
        for (int i = 0; i < 5; i++) {
            int s = socket(AF_INET, SOCK_STREAM, 0);
            connect(s, (struct sockaddr *)&to, sizeof(to));
            close(s);
        }
        usleep(1000);
    }
    return 0;
}
