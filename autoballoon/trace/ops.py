"""Event codes of a page-access stream, shared by the trace readers and the replay kernels.

An access stream is three equal-length arrays: ``gap_ns`` (int64, simulated nanoseconds of
think time before the event, measured on an unloaded machine), ``page`` (int64, page number
inside the workload's address space, ``0 <= page < footprint``) and ``op`` (uint8, below).
A page keeps one kind (anon or file) for the whole stream.
"""

OP_WRITE = 0x01    # bit: the access writes (dirties) the page
OP_FILE = 0x02     # bit: a page-cache (file) page; otherwise anonymous memory
OP_SYSCALL = 0x04  # bit, with OP_FILE: reached through read()/write(), not mapped
                   # (mark_page_accessed semantics instead of the PTE accessed bit)
OP_FREE = 0x80     # event: munmap()/free() of the page (anon: freed; file: stays cached)
OP_EXIT = 0x81     # event: the process exits; all its anon memory and swap are freed

ACCESS_MASK = OP_WRITE | OP_FILE | OP_SYSCALL

# The synthetic access patterns, for the scenario's phases (generated in the kernel) and for
# trace.synth (generated as files): seq (sequential anon writes), rand (uniform anon), read
# (sequential read() of file pages), zipf (anon, Zipf-distributed).
PATTERNS = ("seq", "rand", "read", "zipf")


def is_access(op: int) -> bool:
    return op < OP_FREE
