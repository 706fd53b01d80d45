// cpuspeed times slices of a fixed amount of CPU work and prints each in
// milliseconds, to show whether this machine's CPUs keep their speed. On
// the 2-vCPU VM of the README's table a slice took 9-10 ms most of the time
// and 21-27 ms for stretches of 20-230 ms, which is why the free bench
// cells swing between runs.
//
// usage: gcc -O1 -o cpuspeed ci/bench/cpuspeed.c && ./cpuspeed [slices]
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
	int slices = argc > 1 ? atoi(argv[1]) : 10;
	for (int s = 0; s < slices; s++) {
		double t = now();
		volatile unsigned long x = 0;
		for (unsigned long i = 0; i < 30000000UL; i++)
			x += i;
		printf("%.0f ", (now() - t) * 1e3);
	}
	printf("\n");
	return 0;
}
