/* benchrun: the timing helper of bench/run.sh.
 *
 * It forks and execs a command, waits for it with wait4(2) and prints the wall time and
 * the peak RSS the kernel recorded for that process and every descendant it reaped.
 * Measuring in C keeps the shell's own fork/exec cost out of the figures.
 *
 *   benchrun [--mntns FILE] once -- ARGV...
 *       prints "<microseconds> <maxrss KiB> <exit status>"
 *   benchrun [--mntns FILE] many N J -- ARGV...
 *       runs ARGV N times, J at a time; "{}" in any argument is replaced by the run's
 *       index (0..N-1), so every container gets its own id. Prints
 *       "<total microseconds> <largest maxrss KiB> <number of failed runs>"
 *   benchrun reaper -- ARGV...
 *       runs ARGV as a child subreaper and reaps every orphan until ARGV exits, then
 *       returns its exit status. bench/run.sh runs itself under it: container inits left
 *       by `create`/`start` are reparented here when the runtime exits, and are reaped
 *       instead of becoming zombies of PID 1 (which does not reap on every host).
 *   benchrun floor FLAGS PROGRAM
 *       the kernel floor: clone(2) with the namespace FLAGS (a comma list of
 *       mnt,pid,net,ipc,uts,cgroup,user), exec PROGRAM in the child, wait for it.
 *       Meant to be timed by "benchrun once -- benchrun floor ...".
 *
 * --mntns FILE: the child joins that mount namespace (setns) before exec. bench/run.sh uses
 * it to run crun where /sys/fs/cgroup/unified is hidden, without paying for an extra
 * unshare+mount per command.
 *
 * The command's stdin is /dev/null and its stdout goes to /dev/null; stderr is kept, so
 * failures show.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *mntns_path;

static long long now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static void die(const char *what) {
    fprintf(stderr, "benchrun: %s: %s\n", what, strerror(errno));
    exit(125);
}

/* Replace every "{}" in s by idx. */
static char *subst(const char *s, int idx) {
    const char *p = strstr(s, "{}");
    if (!p)
        return strdup(s);
    char num[16];
    snprintf(num, sizeof num, "%d", idx);
    size_t n = strlen(s) + 16 * 4 + 1;
    char *out = malloc(n);
    out[0] = 0;
    const char *cur = s;
    while ((p = strstr(cur, "{}")) != NULL) {
        strncat(out, cur, (size_t)(p - cur));
        strcat(out, num);
        cur = p + 2;
    }
    strcat(out, cur);
    return out;
}

static pid_t spawn(char **argv, int argc, int idx) {
    char **av = calloc((size_t)argc + 1, sizeof *av);
    for (int i = 0; i < argc; i++)
        av[i] = idx >= 0 ? subst(argv[i], idx) : argv[i];
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        if (mntns_path) {
            int fd = open(mntns_path, O_RDONLY | O_CLOEXEC);
            if (fd < 0 || setns(fd, CLONE_NEWNS) != 0) {
                fprintf(stderr, "benchrun: joining %s: %s\n", mntns_path, strerror(errno));
                _exit(126);
            }
            close(fd);
        }
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null < 0)
            _exit(126);
        dup2(null, 0);
        dup2(null, 1);
        execvp(av[0], av);
        fprintf(stderr, "benchrun: exec %s: %s\n", av[0], strerror(errno));
        _exit(127);
    }
    if (idx >= 0) {
        for (int i = 0; i < argc; i++)
            free(av[i]);
    }
    free(av);
    return pid;
}

static int floor_main(const char *flags_s, char *prog) {
    int flags = 0;
    char *copy = strdup(flags_s), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "mnt")) flags |= CLONE_NEWNS;
        else if (!strcmp(t, "pid")) flags |= CLONE_NEWPID;
        else if (!strcmp(t, "net")) flags |= CLONE_NEWNET;
        else if (!strcmp(t, "ipc")) flags |= CLONE_NEWIPC;
        else if (!strcmp(t, "uts")) flags |= CLONE_NEWUTS;
        else if (!strcmp(t, "cgroup")) flags |= CLONE_NEWCGROUP;
        else if (!strcmp(t, "user")) flags |= CLONE_NEWUSER;
        else if (*t) { fprintf(stderr, "benchrun floor: unknown namespace %s\n", t); return 2; }
    }
    free(copy);
    /* A raw clone with no new stack behaves like fork: the child continues here. */
    long r = syscall(SYS_clone, (unsigned long)flags | SIGCHLD, NULL, NULL, NULL, 0);
    if (r < 0)
        die("clone");
    if (r == 0) {
        char *av[] = {prog, NULL};
        char *ev[] = {NULL};
        execve(prog, av, ev);
        _exit(127);
    }
    int st;
    if (waitpid((pid_t)r, &st, 0) < 0)
        die("waitpid");
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void usage(void) {
    fprintf(stderr, "usage: benchrun [--mntns FILE] once -- ARGV...\n"
                    "       benchrun [--mntns FILE] many N J -- ARGV...\n"
                    "       benchrun floor FLAGS PROGRAM\n");
    exit(2);
}

int main(int argc, char **argv) {
    int i = 1;
    if (i + 1 < argc && !strcmp(argv[i], "--mntns")) {
        mntns_path = argv[i + 1];
        i += 2;
    }
    if (i >= argc)
        usage();
    if (!strcmp(argv[i], "floor")) {
        if (argc - i != 3)
            usage();
        return floor_main(argv[i + 1], argv[i + 2]);
    }
    if (!strcmp(argv[i], "reaper")) {
        i++;
        if (i < argc && !strcmp(argv[i], "--"))
            i++;
        if (i >= argc)
            usage();
        if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
            die("prctl(PR_SET_CHILD_SUBREAPER)");
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0) {
            execvp(argv[i], argv + i);
            fprintf(stderr, "benchrun: exec %s: %s\n", argv[i], strerror(errno));
            _exit(127);
        }
        /* Let ^C and kill reach the script, not us: it cleans up and exits. */
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        int st, code = 125;
        for (;;) {
            pid_t p = waitpid(-1, &st, 0);
            if (p < 0) {
                if (errno == EINTR)
                    continue;
                break;
            }
            if (p == pid) {
                code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                break;
            }
        }
        /* The script has deleted its containers; reap what already exited and leave. */
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        return code;
    }
    if (!strcmp(argv[i], "once")) {
        i++;
        if (i < argc && !strcmp(argv[i], "--"))
            i++;
        if (i >= argc)
            usage();
        long long t0 = now_us();
        pid_t pid = spawn(argv + i, argc - i, -1);
        int st;
        struct rusage ru;
        if (wait4(pid, &st, 0, &ru) < 0)
            die("wait4");
        long long t1 = now_us();
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        printf("%lld %ld %d\n", t1 - t0, ru.ru_maxrss, code);
        return 0;
    }
    if (!strcmp(argv[i], "many")) {
        if (argc - i < 4)
            usage();
        int n = atoi(argv[i + 1]), j = atoi(argv[i + 2]);
        i += 3;
        if (i < argc && !strcmp(argv[i], "--"))
            i++;
        if (n < 1 || j < 1 || i >= argc)
            usage();
        pid_t *running = calloc((size_t)j, sizeof *running);
        int started = 0, done = 0, failed = 0, active = 0;
        long maxrss = 0;
        long long t0 = now_us();
        while (done < n) {
            while (active < j && started < n) {
                pid_t p = spawn(argv + i, argc - i, started);
                for (int k = 0; k < j; k++)
                    if (running[k] == 0) { running[k] = p; break; }
                started++;
                active++;
            }
            int st;
            struct rusage ru;
            pid_t p = wait4(-1, &st, 0, &ru);
            if (p < 0)
                die("wait4");
            int ours = 0;
            for (int k = 0; k < j; k++)
                if (running[k] == p) { running[k] = 0; ours = 1; break; }
            if (!ours)
                continue; /* not one of the runs (cannot happen without a subreaper) */
            active--;
            done++;
            if (ru.ru_maxrss > maxrss)
                maxrss = ru.ru_maxrss;
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                failed++;
        }
        long long t1 = now_us();
        printf("%lld %ld %d\n", t1 - t0, maxrss, failed);
        return 0;
    }
    usage();
    return 2;
}
