/* A minimal, efficient HTTP health endpoint for benches/health-scale.sh.
 *
 *   healthd ADDR PORT [keep]
 *
 * One thread, epoll, non-blocking: accepts, reads a request head, answers
 * "HTTP/1.1 200 OK" with body "OK\n" and closes, so that thousands of health checks per
 * second cost the backend little and the measured CPU is Roundel's. With `keep` it answers
 * without `Connection: close` and keeps the connection for the next request (HTTP/1.1
 * keep-alive, for checks with reuse_connection), closing it when the client does; its
 * descriptor limit is then raised to the hard limit, as it holds one per client. Binds ADDR:PORT only
 * (ADDR must be a 127.0.0.0/8 address: the benchmark stays on loopback). Prints the number
 * of requests answered so far on SIGUSR1, and stops on SIGTERM printing it once more: the
 * benchmarks count the checks made from it.
 */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static const char REPLY[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nOK\n";
static const char REPLY_KEEP[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nOK\n";

static volatile sig_atomic_t stop, report;
static void on_term(int sig) { (void)sig; stop = 1; }
static void on_usr1(int sig) { (void)sig; report = 1; }

int main(int argc, char **argv) {
    int keep = argc == 4 && strcmp(argv[3], "keep") == 0;
    if (argc != 3 && !keep) {
        fprintf(stderr, "usage: healthd ADDR PORT [keep]\n");
        return 2;
    }
    if (keep) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1 || (ntohl(sa.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "healthd: ADDR must be in 127.0.0.0/8\n");
        return 2;
    }
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(ls, 4096) != 0) {
        perror("healthd: bind/listen");
        return 1;
    }
    struct sigaction st = {.sa_handler = on_term};
    sigaction(SIGTERM, &st, NULL); /* no SA_RESTART: epoll_wait returns EINTR */
    struct sigaction su = {.sa_handler = on_usr1};
    sigaction(SIGUSR1, &su, NULL);
    unsigned long answered = 0;
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    struct epoll_event evs[256];
    char buf[4096];
    for (;;) {
        if (stop || report) {
            printf("%lu\n", answered);
            fflush(stdout);
            if (stop) return 0;
            report = 0;
        }
        /* A signal during the loop body is seen within the 100 ms wait. */
        int n = epoll_wait(ep, evs, 256, 100);
        if (n < 0) {
            if (errno == EINTR) continue;
            return 1;
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                for (;;) {
                    int c = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
                    if (c < 0) break;
                    struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            ssize_t r = read(fd, buf, sizeof buf);
            if (r > 0) {
                /* A check's request head fits one segment; answer it and close (or, with
                 * keep, wait for the next one). */
                ssize_t w = keep ? write(fd, REPLY_KEEP, sizeof REPLY_KEEP - 1)
                                 : write(fd, REPLY, sizeof REPLY - 1);
                (void)w;
                answered++;
                if (keep) continue;
            } else if (r < 0 && errno == EAGAIN) {
                continue;
            }
            close(fd);
        }
    }
}
