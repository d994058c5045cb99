/* memory_alloc: who allocates memory: pages, kmalloc and slab allocations, user page faults.
 *
 * Traces: kmem:mm_page_alloc (pages = 2^order, charged to the current task), kmem:kmalloc and
 *   kmem:kmem_cache_alloc (bytes_alloc; the slab cache's name when this kernel's tracepoint has
 *   it), and exceptions:page_fault_user when present (x86).
 * Output: in-kernel sums per (pid, comm): page allocations and pages, kmalloc calls and bytes,
 *   slab cache allocations and bytes, user page faults; allocations per page order; slab
 *   allocations per cache; the first SAMPLE_LIMIT allocations of order >= HIGH_ORDER as samples.
 * Overhead: medium. Page allocations and faults are cheap to count; kmalloc and
 *   kmem_cache_alloc can fire millions of times a second on a busy host (one hash update each):
 *   turn them off with slab=false when only pages and faults matter.
 * Caveats: allocations, not usage: frees are not subtracted, so this is a rate, not a footprint.
 *   Allocations made in interrupt context (network receive, block completion) are charged to
 *   whichever task was interrupted, and kernel threads (kswapd, kworker) allocate on others'
 *   behalf. Transparent huge pages show as order-9 allocations (512 pages each).
 */

#ifndef BPFS_COMM_LEN
#define BPFS_COMM_LEN 16
#endif
#ifndef SAMPLE_LIMIT
#define SAMPLE_LIMIT 16
#endif
#ifndef HIGH_ORDER
#define HIGH_ORDER 3
#endif
#ifndef TRACE_SLAB
#define TRACE_SLAB 1
#endif
#ifndef TRACE_FAULTS
#define TRACE_FAULTS 1
#endif
#define MAX_ORDER_SLOT 11
#define CACHE_NAME_LEN 32

struct key_t {
    u32 pid;
    u32 pad;
    char comm[BPFS_COMM_LEN];
};

struct val_t {
    u64 page_allocs;
    u64 pages;
    u64 kmalloc_calls;
    u64 kmalloc_bytes;
    u64 cache_allocs;
    u64 cache_bytes;
    u64 faults;
};

struct cache_key_t {
    char name[CACHE_NAME_LEN];
};

struct cache_val_t {
    u64 count;
    u64 bytes;
};

struct event_t {
    u64 ts;
    u64 gfp_flags;
    u32 pid;
    u32 order;
    char comm[BPFS_COMM_LEN];
};

BPF_HASH(usage, struct key_t, struct val_t, 8192);
BPF_ARRAY(orders, u64, MAX_ORDER_SLOT + 1);
BPF_HASH(caches, struct cache_key_t, struct cache_val_t, 1024);
BPF_ARRAY(sampled, u64, 1);
BPF_RINGBUF_OUTPUT(events, 8);

static __always_inline struct val_t *current_usage(struct key_t *key)
{
    if (bs_skip())
        return 0;
    key->pid = bs_tgid();
    bpf_get_current_comm(&key->comm, sizeof(key->comm));
    struct val_t zero = {};
    struct val_t *val = usage.lookup_or_try_init(key, &zero);
    if (!val)
        bs_count_drop();
    return val;
}

TRACEPOINT_PROBE(kmem, mm_page_alloc)
{
    struct key_t key = {};
    struct val_t *val = current_usage(&key);
    if (!val)
        return 0;
    u32 order = args->order;
    __sync_fetch_and_add(&val->page_allocs, 1);
    __sync_fetch_and_add(&val->pages, 1ULL << (order & 31));
    int slot = order > MAX_ORDER_SLOT ? MAX_ORDER_SLOT : order;
    u64 *count = orders.lookup(&slot);
    if (count)
        __sync_fetch_and_add(count, 1);
    if (order < HIGH_ORDER)
        return 0;
    int idx = 0;
    u64 *n = sampled.lookup(&idx);
    if (!n || *n >= SAMPLE_LIMIT)
        return 0;
    __sync_fetch_and_add(n, 1);
    struct event_t ev = {};
    ev.ts = bpf_ktime_get_ns();
    ev.gfp_flags = args->gfp_flags;
    ev.pid = key.pid;
    ev.order = order;
    __builtin_memcpy(ev.comm, key.comm, sizeof(ev.comm));
    if (events.ringbuf_output(&ev, sizeof(ev), BPF_RB_NO_WAKEUP) != 0)
        bs_count_drop();
    return 0;
}

#if TRACE_SLAB
TRACEPOINT_PROBE(kmem, kmalloc)
{
    struct key_t key = {};
    struct val_t *val = current_usage(&key);
    if (!val)
        return 0;
    __sync_fetch_and_add(&val->kmalloc_calls, 1);
    __sync_fetch_and_add(&val->kmalloc_bytes, args->bytes_alloc);
    return 0;
}

TRACEPOINT_PROBE(kmem, kmem_cache_alloc)
{
    struct key_t key = {};
    struct val_t *val = current_usage(&key);
    if (!val)
        return 0;
    __sync_fetch_and_add(&val->cache_allocs, 1);
    __sync_fetch_and_add(&val->cache_bytes, args->bytes_alloc);
#ifdef HAVE_FIELD_KMEM_KMEM_CACHE_ALLOC_NAME
    struct cache_key_t ckey = {};
    TP_DATA_LOC_READ_STR(ckey.name, name, sizeof(ckey.name));
    struct cache_val_t czero = {};
    struct cache_val_t *cval = caches.lookup_or_try_init(&ckey, &czero);
    if (cval) {
        __sync_fetch_and_add(&cval->count, 1);
        __sync_fetch_and_add(&cval->bytes, args->bytes_alloc);
    }
#endif
    return 0;
}
#endif

#if TRACE_FAULTS && defined(HAVE_TP_EXCEPTIONS_PAGE_FAULT_USER)
TRACEPOINT_PROBE(exceptions, page_fault_user)
{
    struct key_t key = {};
    struct val_t *val = current_usage(&key);
    if (!val)
        return 0;
    __sync_fetch_and_add(&val->faults, 1);
    return 0;
}
#endif
