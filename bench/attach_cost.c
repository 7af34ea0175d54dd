/* attach_cost: what it costs to move a new process into a cgroup v1 hierarchy, two ways.
 *
 *   cc -O2 -o attach_cost bench/attach_cost.c && ./attach_cost [HIERARCHY] [ROUNDS]
 *   (default /sys/fs/cgroup/cpu, 5 rounds; run as root on a host with v1 controllers)
 *
 * "parent": the parent writes the child's pid to cgroup.procs (what runc, crun and cella do).
 *           The kernel takes cgroup_threadgroup_rwsem for writing, which waits for an RCU
 *           grace period when the lock has been idle: milliseconds of wall time.
 * "self":   the child writes "0" (itself) to the `tasks` file. Moving only the calling
 *           thread does not need the threadgroup lock, so there is no grace period to wait
 *           for. (The child is single-threaded, so tasks and cgroup.procs mean the same.)
 *
 * Each trial sleeps first so the lock is back in its idle (fast-path) state, which is the
 * situation of a runtime started by an engine. The cgroup it makes is removed at the end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int write_file(const char *path, const char *s) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, s, strlen(s));
    int e = errno;
    close(fd);
    errno = e;
    return n < 0 ? -1 : 0;
}

/* One trial; returns the attach time in ms, or -1. */
static double trial(const char *dir, int self) {
    char procs[600], tasks[600];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
    snprintf(tasks, sizeof tasks, "%s/tasks", dir);
    int res[2], go[2];
    if (pipe2(res, O_CLOEXEC) || pipe2(go, O_CLOEXEC))
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        double ms = -1;
        if (self) {
            double t0 = now_ms();
            if (write_file(tasks, "0") == 0)
                ms = now_ms() - t0;
        }
        if (write(res[1], &ms, sizeof ms) != sizeof ms)
            _exit(1);
        char b;
        if (read(go[0], &b, 1) < 0)
            _exit(1);
        _exit(0);
    }
    double ms = -1;
    if (read(res[0], &ms, sizeof ms) != sizeof ms)
        ms = -1;
    if (!self) {
        char s[32];
        snprintf(s, sizeof s, "%d", pid);
        double t0 = now_ms();
        ms = write_file(procs, s) == 0 ? now_ms() - t0 : -1;
    }
    if (write(go[1], "x", 1) != 1)
        ms = -1;
    waitpid(pid, NULL, 0);
    close(res[0]); close(res[1]); close(go[0]); close(go[1]);
    return ms;
}

int main(int argc, char **argv) {
    const char *hier = argc > 1 ? argv[1] : "/sys/fs/cgroup/cpu";
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/attach-cost-%d", hier, (int)getpid());
    if (mkdir(dir, 0755) != 0) {
        fprintf(stderr, "attach_cost: mkdir %s: %s\n", dir, strerror(errno));
        return 1;
    }
    int rc = 0;
    for (int r = 0; r < rounds; r++) {
        for (int self = 0; self <= 1; self++) {
            usleep(500000);
            double ms = trial(dir, self);
            if (ms < 0) {
                fprintf(stderr, "attach_cost: %s trial failed: %s\n", self ? "self" : "parent", strerror(errno));
                rc = 1;
                continue;
            }
            printf("%-6s %8.3f ms\n", self ? "self" : "parent", ms);
        }
    }
    if (rmdir(dir) != 0) {
        fprintf(stderr, "attach_cost: rmdir %s: %s\n", dir, strerror(errno));
        rc = 1;
    }
    return rc;
}
