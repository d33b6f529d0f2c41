/* Scalar kernels for the execution oracle: results land in result[]. */
typedef unsigned int u32;
typedef int s32;

#define N_RESULT 256
u32 result[N_RESULT];
static u32 pos;

/* gcc may call these for initialisers even when freestanding. */
void *memcpy(void *d, const void *s, unsigned long n) {
    unsigned char *dp = d; const unsigned char *sp = s;
    while (n--) *dp++ = *sp++;
    return d;
}
void *memset(void *d, int c, unsigned long n) {
    unsigned char *dp = d;
    while (n--) *dp++ = (unsigned char)c;
    return d;
}

static void put(u32 v) { result[pos++ & (N_RESULT - 1)] = v; }

static const unsigned char text[] = "BrainScaleS PPU scalar interpreter test vector 0123456789";
static s32 table[] = {42, -7, 19, 0, -2147483647 - 1, 2147483647, 5, -100, 33, 8, 8, -1, 1000, 77};

static u32 __attribute__((noinline)) adler32(const unsigned char *p, u32 n) {
    u32 a = 1, b = 0;
    for (u32 i = 0; i < n; i++) { a = (a + p[i]) % 65521; b = (b + a) % 65521; }
    return (b << 16) | a;
}

static u32 __attribute__((noinline)) crc32(const unsigned char *p, u32 n) {
    u32 c = 0xFFFFFFFF;
    for (u32 i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320 & -(c & 1));
    }
    return ~c;
}

static u32 __attribute__((noinline)) gcd(u32 a, u32 b) {
    while (b) { u32 t = a % b; a = b; b = t; }
    return a;
}

static void __attribute__((noinline)) sort(s32 *a, u32 n) {
    for (u32 i = 1; i < n; i++) {
        s32 v = a[i]; u32 j = i;
        while (j > 0 && a[j - 1] > v) { a[j] = a[j - 1]; j--; }
        a[j] = v;
    }
}

static u32 __attribute__((noinline)) collatz(u32 n) {
    u32 steps = 0;
    while (n != 1) { n = (n & 1) ? 3 * n + 1 : n >> 1; steps++; }
    return steps;
}

void compute(void) {
    volatile s32 vals[] = {1, -1, 7, -7, 100000, -100000, 65535, 3, -2147483647 - 1, 2147483647};
    put(adler32(text, sizeof text - 1));
    put(crc32(text, sizeof text - 1));
    for (u32 i = 1; i < 12; i++) put(gcd(i * 7919u, 1000000007u % (i * 97u + 1)));
    sort(table, sizeof table / sizeof table[0]);
    for (u32 i = 0; i < sizeof table / sizeof table[0]; i++) put((u32)table[i]);
    for (u32 i = 0; i < 10; i++)
        for (u32 j = 0; j < 10; j++) {
            s32 a = vals[i], b = vals[j];
            put((u32)(a * b));
            put((u32)(((long long)a * b) >> 32));
            put((u32)(((unsigned long long)(u32)a * (u32)b) >> 32));
            if (b != 0 && !(a == -2147483647 - 1 && b == -1)) { put((u32)(a / b)); put((u32)(a % b)); }
            if (b != 0) put((u32)a / (u32)b);
            put((u32)(a >> (j + 20)) ^ ((u32)a << j));
        }
    for (u32 i = 1; i < 30; i += 3) put(collatz(i * 31));
    unsigned short h[4] = {0x8001, 0x7FFF, 0x1234, 0xFFFF};
    signed char c[4] = {-128, 127, -1, 5};
    for (int i = 0; i < 4; i++) put((u32)(s32)(short)h[i] + (u32)(s32)c[i]);
    put(pos);
}
