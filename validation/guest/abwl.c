/*
 * abwl: the guest side of autoballoon's real-guest validation harness (validation/run.py).
 *
 * Built with `gcc -static -O2` and put into the guest's initramfs. Three modes:
 *
 *   abwl run PORT INTERVAL_MS SEED MAPPING FILE PHASE...
 *       The phased workload of an autoballoon scenario, exactly the phases of its TOML:
 *       PHASE = pattern,offset,length,passes,duration_ns,think_ns,write_fraction
 *         pattern  seq  : sequential accesses, one per 4 KiB page, over [offset, offset+length)
 *                         of one anonymous mapping of MAPPING bytes
 *                  rand : uniform random page accesses over that range (xorshift64*, the model's
 *                         generator, seeded with SEED)
 *                  read : sequential read() of 4 KiB at a time from FILE, starting at file
 *                         offset `offset` (the harness passes it relative to the first read phase)
 *         passes / duration_ns : exactly one is non-zero and ends the phase
 *         think_ns : time per access on an unloaded machine (a spin after each access)
 *         write_fraction : probability that an anon access writes one byte (else it reads one)
 *       Protocol on PORT (a virtio-serial port the host reads and writes):
 *         guest -> host  "READY"                        waiting for the host
 *         host  -> guest "GO"                           start (after the initial balloon target)
 *         guest -> host  "S <tag> <mono_ns> k=v ..."   a sample of /proc/vmstat + /proc/meminfo;
 *                        tag BEGIN (before the workload), T (every INTERVAL_MS), END (after it)
 *         guest -> host  "P <index> <mono_ns>"          phase <index> starts
 *         guest -> host  "X <mono_ns> <how> <value>"    workload ended: exit <code> | signal <n>
 *       A sampler process (mlockall, oom_score_adj -1000) takes the periodic samples; the
 *       parent (also protected) takes BEGIN/END around the workload child, which runs with
 *       oom_score_adj 0 so that the OOM killer picks it and not the harness.
 *
 *   abwl disk DEV PORT
 *       Measures the block device DEV with O_DIRECT: 4 KiB random read and write latency
 *       and 1 MiB sequential write/read bandwidth; prints "D key=value ..." on PORT.
 *       The harness uses it to calibrate the swap model (validation/results/disk.json).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

static int port = -1;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "abwl: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* One write() per line, so lines from the sampler and the parent never interleave. */
static void emit(const char *buf, size_t n)
{
	while (n > 0) {
		ssize_t w = write(port, buf, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += w;
		n -= (size_t)w;
	}
}

static void emitf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void emitf(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n > 0)
		emit(buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* --- samples ------------------------------------------------------------------------------ */

static const char *VMSTAT_PREFIXES[] = {
	"pswpin", "pswpout", "pgmajfault", "pgfault", "allocstall_", "oom_kill", "pgscan_",
	"pgsteal_", "workingset_refault_", "workingset_activate_", "workingset_restore_",
	"balloon_", "pgpgin", "pgpgout", "nr_free_pages", "pgrefill", "pgactivate",
	"pgdeactivate", "compact_stall", "pageoutrun", "nr_anon_pages", "nr_file_pages",
	NULL};
static const char *MEMINFO_KEYS[] = {
	"MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "SwapCached", "Active(anon)",
	"Inactive(anon)", "Active(file)", "Inactive(file)", "AnonPages", "SwapTotal", "SwapFree",
	"Shmem", "KReclaimable", "Slab", "Mlocked", NULL};

static int vmstat_fd = -1, meminfo_fd = -1;

static int wanted(const char *key, size_t klen, const char **list, int prefix)
{
	for (int i = 0; list[i]; i++) {
		size_t l = strlen(list[i]);
		if (prefix ? (klen >= l && memcmp(key, list[i], l) == 0)
			   : (klen == l && memcmp(key, list[i], l) == 0))
			return 1;
	}
	return 0;
}

/* Appends "k=v" pairs from a /proc file ("key value" or "Key:   value kB"; kB → bytes). */
static size_t add_file(int fd, char *out, size_t pos, size_t cap, const char **list, int prefix)
{
	static char buf[16384];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	if (n <= 0)
		return pos;
	buf[n] = 0;
	char *line = buf;
	while (line && *line) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		char *sep = line;
		while (*sep && *sep != ' ' && *sep != ':')
			sep++;
		size_t klen = (size_t)(sep - line);
		if (klen && wanted(line, klen, list, prefix)) {
			char *v = sep;
			while (*v == ' ' || *v == ':')
				v++;
			unsigned long long val = strtoull(v, &v, 10);
			if (strstr(v, "kB"))
				val *= 1024;
			int w = snprintf(out + pos, cap - pos, " %.*s=%llu", (int)klen, line, val);
			if (w > 0 && pos + (size_t)w < cap)
				pos += (size_t)w;
		}
		line = nl ? nl + 1 : NULL;
	}
	return pos;
}

static void sample(const char *tag)
{
	static char out[8192];
	size_t pos = (size_t)snprintf(out, sizeof out, "S %s %llu", tag, (unsigned long long)now_ns());
	pos = add_file(vmstat_fd, out, pos, sizeof out - 2, VMSTAT_PREFIXES, 1);
	pos = add_file(meminfo_fd, out, pos, sizeof out - 2, MEMINFO_KEYS, 0);
	out[pos++] = '\n';
	emit(out, pos);
}

static void protect(int lock)
{
	int fd = open("/proc/self/oom_score_adj", O_WRONLY);
	if (fd >= 0) {
		if (write(fd, "-1000", 5) < 0) { /* best effort */ }
		close(fd);
	}
	if (lock && mlockall(MCL_CURRENT | MCL_FUTURE) != 0)
		fprintf(stderr, "abwl: mlockall: %s (sampler may be swapped)\n", strerror(errno));
}

static volatile sig_atomic_t stop_sampler;
static void on_term(int sig) { (void)sig; stop_sampler = 1; }

static pid_t start_sampler(unsigned interval_ms)
{
	pid_t pid = fork();
	if (pid < 0)
		die("fork sampler");
	if (pid > 0)
		return pid;
	protect(1);
	signal(SIGTERM, on_term);
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!stop_sampler) {
		sample("T");
		next.tv_nsec += (long)interval_ms * 1000000L;
		while (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR && !stop_sampler)
			;
	}
	_exit(0);
}

/* --- the workload -------------------------------------------------------------------------- */

enum { SEQ, RAND, READ };

struct phase {
	int pattern;
	uint64_t offset, length, passes, duration_ns, think_ns;
	double wfrac;
};

static uint64_t rng;

/* xorshift64*, as autoballoon/mm/replay.py rand_u64 */
static uint64_t rand_u64(void)
{
	uint64_t x = rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng = x;
	return x * 2685821657736338717ULL;
}

static double rand_unit(void) { return (double)(rand_u64() >> 11) * (1.0 / 9007199254740992.0); }

static void think(uint64_t ns)
{
	if (!ns)
		return;
	uint64_t until = now_ns() + ns;
	while (now_ns() < until)
		;
}

static void parse_phase(const char *s, struct phase *p)
{
	char pat[16];
	if (sscanf(s, "%15[a-z],%lu,%lu,%lu,%lu,%lu,%lf", pat, &p->offset, &p->length, &p->passes,
		   &p->duration_ns, &p->think_ns, &p->wfrac) != 7) {
		fprintf(stderr, "abwl: bad phase '%s'\n", s);
		exit(2);
	}
	if (!strcmp(pat, "seq"))
		p->pattern = SEQ;
	else if (!strcmp(pat, "rand"))
		p->pattern = RAND;
	else if (!strcmp(pat, "read"))
		p->pattern = READ;
	else {
		fprintf(stderr, "abwl: bad pattern '%s'\n", pat);
		exit(2);
	}
	if ((p->passes == 0) == (p->duration_ns == 0) || p->length < PAGE) {
		fprintf(stderr, "abwl: phase '%s' needs exactly one of passes/duration\n", s);
		exit(2);
	}
}

static int workload(uint64_t mapping, const char *file, struct phase *ph, int nph)
{
	volatile unsigned char *mem = mmap(NULL, mapping, PROT_READ | PROT_WRITE,
					   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap");
	madvise((void *)mem, mapping, MADV_NOHUGEPAGE);   /* the model has 4 KiB pages only */
	int fd = -1;
	static char buf[PAGE] __attribute__((aligned(4096)));
	unsigned long sink = 0;
	for (int i = 0; i < nph; i++) {
		struct phase *p = &ph[i];
		uint64_t npages = p->length / PAGE, pos = 0, pass = 0, start = now_ns();
		emitf("P %d %llu\n", i, (unsigned long long)start);
		if (p->pattern == READ && fd < 0) {
			fd = open(file, O_RDONLY);
			if (fd < 0)
				die(file);
		}
		for (uint64_t n = 0;; n++) {
			if (p->passes ? pass >= p->passes
				      : ((n & 63) == 0 && now_ns() - start >= p->duration_ns))
				break;
			uint64_t off;
			if (p->pattern == RAND)
				off = rand_u64() % npages;
			else
				off = pos;
			if (++pos == npages) {
				pos = 0;
				pass++;
			}
			if (p->pattern == READ) {
				if (pread(fd, buf, PAGE, (off_t)((p->offset / PAGE + off) * PAGE)) < 0)
					die("read");
				sink += buf[0];
			} else {
				volatile unsigned char *a = mem + p->offset + off * PAGE;
				if (rand_unit() < p->wfrac)
					*a = (unsigned char)n;
				else
					sink += *a;
			}
			think(p->think_ns);
		}
	}
	return (int)(sink & 0);
}

static void open_port(const char *path)
{
	port = open(path, O_RDWR | O_NOCTTY);
	if (port < 0)
		die(path);
	struct termios t;
	if (tcgetattr(port, &t) == 0) {   /* a tty (serial port): raw mode */
		cfmakeraw(&t);
		tcsetattr(port, TCSANOW, &t);
	}
}

static void wait_go(void)
{
	char line[64];
	size_t n = 0;
	emitf("READY\n");
	for (;;) {
		char c;
		ssize_t r = read(port, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			usleep(10000);
			continue;
		}
		if (c == '\n' || c == '\r') {
			line[n] = 0;
			if (!strcmp(line, "GO"))
				return;
			n = 0;
		} else if (n < sizeof line - 1) {
			line[n++] = c;
		}
	}
}

static int cmd_run(int argc, char **argv)
{
	if (argc < 7) {
		fprintf(stderr, "usage: abwl run PORT INTERVAL_MS SEED MAPPING FILE PHASE...\n");
		return 2;
	}
	open_port(argv[2]);
	unsigned interval = (unsigned)strtoul(argv[3], NULL, 10);
	rng = strtoull(argv[4], NULL, 0);
	if (!rng)
		rng = 1;
	uint64_t mapping = strtoull(argv[5], NULL, 10);
	const char *file = argv[6];
	int nph = argc - 7;
	struct phase *ph = calloc((size_t)nph, sizeof *ph);
	for (int i = 0; i < nph; i++)
		parse_phase(argv[7 + i], &ph[i]);
	vmstat_fd = open("/proc/vmstat", O_RDONLY);
	meminfo_fd = open("/proc/meminfo", O_RDONLY);
	if (vmstat_fd < 0 || meminfo_fd < 0)
		die("/proc");
	protect(0);
	wait_go();
	pid_t sampler = start_sampler(interval);
	int go[2];
	if (pipe(go) != 0)
		die("pipe");
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		int fd = open("/proc/self/oom_score_adj", O_WRONLY);
		if (fd >= 0) {
			if (write(fd, "0", 1) < 0) { /* best effort */ }
			close(fd);
		}
		char c;
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(3);
		_exit(workload(mapping, file, ph, nph));
	}
	protect(1);
	close(go[0]);
	sample("BEGIN");
	if (write(go[1], "g", 1) != 1)
		die("start workload");
	int status;
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	sample("END");
	if (WIFSIGNALED(status))
		emitf("X %llu signal %d\n", (unsigned long long)now_ns(), WTERMSIG(status));
	else
		emitf("X %llu exit %d\n", (unsigned long long)now_ns(), WEXITSTATUS(status));
	/* keep sampling until the host powers the guest off (tail: free page reporting etc.) */
	for (;;)
		pause();
	(void)sampler;
	return 0;
}

/* --- disk calibration ---------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmd_disk(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: abwl disk DEV PORT\n");
		return 2;
	}
	open_port(argv[3]);
	int fd = open(argv[2], O_RDWR | O_DIRECT);
	if (fd < 0)
		die(argv[2]);
	off_t size = lseek(fd, 0, SEEK_END);
	const size_t big = 1 << 20;
	unsigned char *buf;
	if (posix_memalign((void **)&buf, 4096, big))
		die("posix_memalign");
	memset(buf, 0x5a, big);
	/* sequential write then read of up to 128 MiB in 1 MiB requests */
	off_t span = size < (off_t)(128 << 20) ? size : (off_t)(128 << 20);
	uint64_t t0 = now_ns();
	for (off_t o = 0; o + (off_t)big <= span; o += (off_t)big)
		if (pwrite(fd, buf, big, o) != (ssize_t)big)
			die("pwrite");
	fdatasync(fd);
	uint64_t t1 = now_ns();
	for (off_t o = 0; o + (off_t)big <= span; o += (off_t)big)
		if (pread(fd, buf, big, o) != (ssize_t)big)
			die("pread");
	uint64_t t2 = now_ns();
	/* 4 KiB random reads and writes inside the written span: per-request latency */
	enum { N = 2000 };
	static uint64_t rd[N], wr[N];
	rng = 12345;
	uint64_t pages = (uint64_t)span / PAGE;
	for (int i = 0; i < N; i++) {
		off_t o = (off_t)((rand_u64() % pages) * PAGE);
		uint64_t a = now_ns();
		if (pread(fd, buf, PAGE, o) != (ssize_t)PAGE)
			die("pread 4k");
		rd[i] = now_ns() - a;
	}
	for (int i = 0; i < N; i++) {
		off_t o = (off_t)((rand_u64() % pages) * PAGE);
		uint64_t a = now_ns();
		if (pwrite(fd, buf, PAGE, o) != (ssize_t)PAGE)
			die("pwrite 4k");
		wr[i] = now_ns() - a;
	}
	qsort(rd, N, sizeof rd[0], cmp_u64);
	qsort(wr, N, sizeof wr[0], cmp_u64);
	emitf("D span_bytes=%llu seq_write_ns=%llu seq_read_ns=%llu read4k_p50_ns=%llu "
	      "read4k_p90_ns=%llu write4k_p50_ns=%llu write4k_p90_ns=%llu\n",
	      (unsigned long long)span, (unsigned long long)(t1 - t0),
	      (unsigned long long)(t2 - t1), (unsigned long long)rd[N / 2],
	      (unsigned long long)rd[N * 9 / 10], (unsigned long long)wr[N / 2],
	      (unsigned long long)wr[N * 9 / 10]);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "run"))
		return cmd_run(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "disk"))
		return cmd_disk(argc, argv);
	fprintf(stderr, "usage: abwl run ... | abwl disk DEV PORT\n");
	return 2;
}
