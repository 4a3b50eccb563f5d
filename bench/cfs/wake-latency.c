/*
 * wake-latency: how long a process blocked in read(2) takes to run again
 * after another process writes to its pipe, by how long it was blocked.
 *
 * Every FUSE request and reply, and every ZooKeeper request and reply, is
 * such a wake-up. On a VM whose idle vCPUs halt, waking a process on another
 * vCPU costs an interrupt through the hypervisor, and more the longer that
 * vCPU has been idle; this measures it (bench/README.md, "Wake-ups").
 *
 *   wake-latency GAP_US [ROUNDS]
 *
 * The writer spins GAP_US microseconds (so its own vCPU stays busy while
 * the reader's may go idle), then writes its CLOCK_MONOTONIC time; the
 * reader takes the difference when read(2) returns, answers, and blocks
 * again. Prints the 10th, 50th and 90th percentiles. Run it under
 * `taskset -c 0` to see the same wake-up without a second vCPU.
 *
 * Build: gcc -O2 -Wall -o wake-latency wake-latency.c
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: wake-latency GAP_US [ROUNDS]\n");
		return 2;
	}
	int gap = atoi(argv[1]);
	int rounds = argc > 2 ? atoi(argv[2]) : 2000;
	if (gap < 0 || rounds < 10) {
		fprintf(stderr, "wake-latency: GAP_US must be >= 0 and ROUNDS >= 10\n");
		return 2;
	}
	int to_reader[2], to_writer[2];
	if (pipe(to_reader) < 0 || pipe(to_writer) < 0)
		die("pipe");
	pid_t reader = fork();
	if (reader < 0)
		die("fork");
	if (reader == 0) {
		double *latency = malloc(sizeof(double) * rounds);
		if (!latency)
			die("malloc");
		for (int i = 0; i < rounds; i++) {
			double sent;
			if (read(to_reader[0], &sent, sizeof sent) != sizeof sent)
				die("read");
			latency[i] = now_us() - sent;
			if (write(to_writer[1], "k", 1) != 1)
				die("write");
		}
		qsort(latency, rounds, sizeof(double), by_value);
		printf("blocked %d us: wake-up p10 %.1f p50 %.1f p90 %.1f us\n", gap, latency[rounds / 10],
		       latency[rounds / 2], latency[rounds * 9 / 10]);
		return 0;
	}
	for (int i = 0; i < rounds; i++) {
		double start = now_us();
		while (now_us() - start < gap)
			;
		double sent = now_us();
		char answer;
		if (write(to_reader[1], &sent, sizeof sent) != sizeof sent)
			die("write");
		if (read(to_writer[0], &answer, 1) != 1)
			die("read");
	}
	int status;
	if (waitpid(reader, &status, 0) < 0)
		die("waitpid");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
