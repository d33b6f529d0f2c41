/* Benchmark workload: a mix of ordinary integer code, the same C for the twin's PPU
 * and for qemu-ppc-static (tools/bench/cosim.py builds and runs both).
 *
 * Per iteration: fill a buffer from a PRNG, CRC-32 it (table-driven and bitwise),
 * FNV-1a and Adler-32 it, insertion-sort and shell-sort two arrays and binary-search
 * them, multiply two 8x8 integer matrices, run a small bytecode interpreter
 * (switch / jump table), a few recursive and division-heavy helpers; everything
 * folds into one 32-bit checksum.
 *
 * Iterations: the global `mix_iterations` (default MIX_ITERATIONS, a macro).
 *
 * PPU image (linked at 0 behind firmware/crt0.s; main's return value is the result):
 *   powerpc-linux-gnu-as -me500mc -mregnames firmware/crt0.s -o crt0.o
 *   powerpc-linux-gnu-gcc -O2 -ffreestanding -nostdlib -static -mcpu=powerpc -msoft-float \
 *       -msdata=none -G 0 -fno-pic -fno-stack-protector -fno-tree-loop-distribute-patterns \
 *       -Wl,-N,-Ttext=0,-e,_start crt0.o firmware/bench/mix.c -o mix.elf
 *   bss-twin ppu-run mix.elf --chip hx      # "return code" = the checksum (signed)
 * Linux user-mode binary (same flags plus -DMIX_LINUX, no crt0): prints the checksum as
 * 8 hex digits on stdout and exits 0 through `sc`.
 *
 * Freestanding: no library calls; memcpy/memset are defined here because gcc may call
 * them for aggregate copies.
 */
typedef unsigned int u32;
typedef int s32;
typedef unsigned char u8;

#ifndef MIX_ITERATIONS
#define MIX_ITERATIONS 4
#endif

volatile u32 mix_iterations = MIX_ITERATIONS;

void *memcpy(void *d, const void *s, unsigned long n) {
    u8 *dp = d; const u8 *sp = s;
    while (n--) *dp++ = *sp++;
    return d;
}

void *memset(void *d, int c, unsigned long n) {
    u8 *dp = d;
    while (n--) *dp++ = (u8)c;
    return d;
}

#define NOINLINE __attribute__((noinline))
#define BUF 512
#define NSORT 96
#define MAT 8

static u8 buf[BUF];
static u32 crc_table[256];
static s32 arr_a[NSORT], arr_b[NSORT];
static s32 mat_a[MAT][MAT], mat_b[MAT][MAT], mat_c[MAT][MAT];
static u32 rng_state;

static NOINLINE u32 rng_next(void) {
    /* xorshift32 */
    u32 x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    rng_state = x;
    return x;
}

static NOINLINE u32 mix32(u32 h, u32 v) {
    h ^= v + 0x9E3779B9u + (h << 6) + (h >> 2);
    return h;
}

/* ---------------------------------------------------------------- checksums */
static NOINLINE void crc_init(void) {
    for (u32 i = 0; i < 256; i++) {
        u32 c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        crc_table[i] = c;
    }
}

static NOINLINE u32 crc32_table(const u8 *p, u32 n) {
    u32 c = 0xFFFFFFFFu;
    for (u32 i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return ~c;
}

static NOINLINE u32 crc32_bitwise(const u8 *p, u32 n) {
    u32 c = 0xFFFFFFFFu;
    for (u32 i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & -(c & 1));
    }
    return ~c;
}

static NOINLINE u32 fnv1a(const u8 *p, u32 n) {
    u32 h = 2166136261u;
    for (u32 i = 0; i < n; i++) { h ^= p[i]; h *= 16777619u; }
    return h;
}

static NOINLINE u32 adler32(const u8 *p, u32 n) {
    u32 a = 1, b = 0;
    for (u32 i = 0; i < n; i++) { a += p[i]; if (a >= 65521) a -= 65521; b += a; if (b >= 65521) b -= 65521; }
    return (b << 16) | a;
}

/* ---------------------------------------------------------------- sorting, searching */
static NOINLINE void insertion_sort(s32 *a, u32 n) {
    for (u32 i = 1; i < n; i++) {
        s32 v = a[i]; u32 j = i;
        while (j > 0 && a[j - 1] > v) { a[j] = a[j - 1]; j--; }
        a[j] = v;
    }
}

static NOINLINE void shell_sort(s32 *a, u32 n) {
    static const u32 gaps[] = {57, 23, 10, 4, 1};
    for (u32 g = 0; g < sizeof gaps / sizeof gaps[0]; g++) {
        u32 gap = gaps[g];
        for (u32 i = gap; i < n; i++) {
            s32 v = a[i]; u32 j = i;
            while (j >= gap && a[j - gap] > v) { a[j] = a[j - gap]; j -= gap; }
            a[j] = v;
        }
    }
}

static NOINLINE s32 bsearch_index(const s32 *a, u32 n, s32 key) {
    u32 lo = 0, hi = n;
    while (lo < hi) {
        u32 mid = (lo + hi) >> 1;
        if (a[mid] < key) lo = mid + 1; else hi = mid;
    }
    return (lo < n && a[lo] == key) ? (s32)lo : -1;
}

static NOINLINE u32 check_sorted(const s32 *a, u32 n) {
    u32 bad = 0;
    for (u32 i = 1; i < n; i++) bad += a[i - 1] > a[i];
    return bad;
}

/* ---------------------------------------------------------------- matrices */
static NOINLINE void matmul(s32 c[MAT][MAT], s32 a[MAT][MAT], s32 b[MAT][MAT]) {
    for (int i = 0; i < MAT; i++)
        for (int j = 0; j < MAT; j++) {
            s32 s = 0;
            for (int k = 0; k < MAT; k++) s += a[i][k] * b[k][j];
            c[i][j] = s;
        }
}

static NOINLINE u32 trace_and_sum(s32 m[MAT][MAT]) {
    u32 h = 0;
    for (int i = 0; i < MAT; i++) {
        h = mix32(h, (u32)m[i][i]);
        for (int j = 0; j < MAT; j++) h += (u32)m[i][j] * (u32)(i + 2 * j + 1);
    }
    return h;
}

static NOINLINE void transpose(s32 m[MAT][MAT]) {
    for (int i = 0; i < MAT; i++)
        for (int j = i + 1; j < MAT; j++) { s32 t = m[i][j]; m[i][j] = m[j][i]; m[j][i] = t; }
}

/* ---------------------------------------------------------------- a bytecode machine */
enum { OP_PUSH, OP_ADD, OP_SUB, OP_MUL, OP_XOR, OP_DUP, OP_SWAP, OP_JNZ, OP_DEC, OP_SHL, OP_SHR,
       OP_ROT, OP_AND, OP_OR, OP_NOT, OP_HALT };

static const u8 bytecode[] = {
    OP_PUSH, 7, OP_PUSH, 40,                  /* [seed, acc, counter] */
    /* loop (pc 4): */
    OP_SWAP, OP_DUP, OP_PUSH, 3, OP_SHL, OP_XOR, OP_PUSH, 13, OP_ADD, OP_PUSH, 5, OP_MUL,
    OP_DUP, OP_PUSH, 7, OP_SHR, OP_XOR, OP_ROT, OP_PUSH, 0x5A, OP_OR, OP_NOT,
    OP_SWAP, OP_DEC, OP_DUP, OP_JNZ, 4,       /* [seed, acc', counter - 1] */
    OP_SUB, OP_PUSH, 0xF7, OP_AND, OP_HALT,   /* [seed, acc' & 0xF7] */
};

static NOINLINE u32 vm_run(const u8 *code, u32 seed) {
    u32 stack[16];
    u32 sp = 0, pc = 0;
    stack[sp++] = seed;
    for (;;) {
        u8 op = code[pc++];
        switch (op) {
        case OP_PUSH: stack[sp++] = code[pc++]; break;
        case OP_ADD: sp--; stack[sp - 1] += stack[sp]; break;
        case OP_SUB: sp--; stack[sp - 1] -= stack[sp]; break;
        case OP_MUL: sp--; stack[sp - 1] *= stack[sp]; break;
        case OP_XOR: sp--; stack[sp - 1] ^= stack[sp]; break;
        case OP_AND: sp--; stack[sp - 1] &= stack[sp]; break;
        case OP_OR: sp--; stack[sp - 1] |= stack[sp]; break;
        case OP_DUP: stack[sp] = stack[sp - 1]; sp++; break;
        case OP_SWAP: { u32 t = stack[sp - 1]; stack[sp - 1] = stack[sp - 2]; stack[sp - 2] = t; } break;
        case OP_JNZ: { u32 t = stack[--sp]; u8 target = code[pc++]; if (t) pc = target; } break;
        case OP_DEC: stack[sp - 1]--; break;
        case OP_SHL: sp--; stack[sp - 1] <<= (stack[sp] & 31); break;
        case OP_SHR: sp--; stack[sp - 1] >>= (stack[sp] & 31); break;
        case OP_ROT: { u32 v = stack[sp - 1]; stack[sp - 1] = (v << 11) | (v >> 21); } break;
        case OP_NOT: stack[sp - 1] = ~stack[sp - 1]; break;
        case OP_HALT:
        default: {
            u32 h = 0;
            while (sp) h = mix32(h, stack[--sp]);
            return h;
        }
        }
        sp &= 15;
    }
}

/* ---------------------------------------------------------------- small helpers */
static NOINLINE u32 fib(u32 n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

static NOINLINE u32 gcd(u32 a, u32 b) {
    while (b) { u32 t = a % b; a = b; b = t; }
    return a;
}

static NOINLINE u32 popcount(u32 v) {
    u32 c = 0;
    while (v) { v &= v - 1; c++; }
    return c;
}

static NOINLINE u32 isqrt(u32 v) {
    u32 r = 0, bit = 1u << 30;
    while (bit > v) bit >>= 2;
    while (bit) {
        if (v >= r + bit) { v -= r + bit; r = (r >> 1) + bit; } else r >>= 1;
        bit >>= 2;
    }
    return r;
}

static NOINLINE u32 collatz(u32 n) {
    u32 steps = 0;
    while (n != 1 && steps < 1000) { n = (n & 1) ? 3 * n + 1 : n >> 1; steps++; }
    return steps;
}

static NOINLINE void reverse_bytes(u8 *p, u32 n) {
    for (u32 i = 0, j = n - 1; i < j; i++, j--) { u8 t = p[i]; p[i] = p[j]; p[j] = t; }
}

static NOINLINE u32 digits(u32 v, u8 *out) {
    /* decimal conversion: divisions by 10 */
    u8 tmp[12];
    u32 n = 0;
    do { tmp[n++] = (u8)('0' + v % 10); v /= 10; } while (v);
    for (u32 i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

/* ---------------------------------------------------------------- one iteration */
static NOINLINE u32 iteration(u32 it) {
    u32 h = it * 0x01000193u;
    for (u32 i = 0; i < BUF; i += 4) {
        u32 r = rng_next();
        buf[i] = (u8)r; buf[i + 1] = (u8)(r >> 8); buf[i + 2] = (u8)(r >> 16); buf[i + 3] = (u8)(r >> 24);
    }
    h = mix32(h, crc32_table(buf, BUF));
    h = mix32(h, crc32_bitwise(buf, 64));
    h = mix32(h, fnv1a(buf, BUF));
    h = mix32(h, adler32(buf, BUF));

    for (u32 i = 0; i < NSORT; i++) {
        arr_a[i] = (s32)(rng_next() % 2001) - 1000;
        arr_b[i] = arr_a[i] ^ (s32)(i * 37);
    }
    insertion_sort(arr_a, NSORT);
    shell_sort(arr_b, NSORT);
    h = mix32(h, check_sorted(arr_a, NSORT) + 7 * check_sorted(arr_b, NSORT));
    for (u32 i = 0; i < 16; i++) {
        s32 key = arr_a[(i * 13) % NSORT] + (s32)(i & 1);
        h = mix32(h, (u32)bsearch_index(arr_a, NSORT, key));
    }
    h = mix32(h, (u32)arr_a[0] + (u32)arr_b[NSORT - 1]);

    for (int i = 0; i < MAT; i++)
        for (int j = 0; j < MAT; j++) {
            mat_a[i][j] = (s32)(rng_next() & 0xFF) - 128;
            mat_b[i][j] = (s32)((rng_next() >> 8) & 0x7F) - 64;
        }
    matmul(mat_c, mat_a, mat_b);
    transpose(mat_c);
    h = mix32(h, trace_and_sum(mat_c));

    h = mix32(h, vm_run(bytecode, h));
    h = mix32(h, fib(12 + (it & 3)));
    h = mix32(h, gcd(h | 1, 0x10001u * (it + 3)));
    h = mix32(h, popcount(h) + isqrt(h));
    h = mix32(h, collatz((h & 0xFFF) + 1));

    u8 text[16];
    u32 n = digits(h, text);
    reverse_bytes(text, n);
    h = mix32(h, fnv1a(text, n));
    return h;
}

int main(void) {
    u32 n = mix_iterations;
    u32 sum = 0;
    rng_state = 0x12345678u;
    crc_init();
    for (u32 it = 0; it < n; it++) sum = mix32(sum, iteration(it));
    return (int)sum;
}

#ifdef MIX_LINUX
/* Linux user mode (qemu-ppc-static): print the checksum as 8 hex digits, exit(0). */
static long sys3(long nr, long a, long b, long c) {
    register long r0 __asm__("r0") = nr;
    register long r3 __asm__("r3") = a;
    register long r4 __asm__("r4") = b;
    register long r5 __asm__("r5") = c;
    __asm__ volatile("sc" : "+r"(r3), "+r"(r0), "+r"(r4), "+r"(r5) : : "memory", "cr0", "ctr", "r6",
                     "r7", "r8", "r9", "r10", "r11", "r12");
    return r3;
}

void linux_start(void) {
    u32 v = (u32)main();
    char out[9];
    for (int i = 0; i < 8; i++) out[i] = "0123456789abcdef"[(v >> (28 - 4 * i)) & 15];
    out[8] = '\n';
    sys3(4, 1, (long)out, 9);      /* write(1, out, 9) */
    sys3(1, 0, 0, 0);              /* exit(0) */
    for (;;) {}
}

__asm__(".globl _start\n"
        "_start:\n"
        "    clrrwi 1, 1, 4\n"
        "    li 0, 0\n"
        "    stwu 0, -16(1)\n"
        "    bl linux_start\n");
#endif
