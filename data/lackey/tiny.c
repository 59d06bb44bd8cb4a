/* tiny: allocate, fill, sort and free an array, so lackey sees heap writes, reads and a free */
#include <stdlib.h>
#include <string.h>
static int cmp(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }
int main(void) {
    size_t n = 512;                             /* 2 KiB of heap */
    int *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = (int)((i * 2654435761u) % 100000);
    qsort(v, n, sizeof *v, cmp);
    volatile char *buf = malloc(1 << 18);               /* 256 KiB, one byte per page */
    for (size_t i = 0; i < (1 << 18); i += 4096) buf[i] = 1;
    free((void *)buf);
    free(v);
    return 0;
}
