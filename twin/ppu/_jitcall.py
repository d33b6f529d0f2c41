"""Call a translated PPU region (twin.ppu.jit) from numba code.

Kept apart from twin.ppu.jit so that the interpreter can use it without
importing LLVM: the call is a plain indirect call through the machine-code
address that twin.ppu.jit stores in the decoded rows.  The region function's
C signature is

    int64 region(int64 *state, uint8 *mem, int32 *decoded,
                 int64 mem_bytes, int64 decoded_rows, int64 cycle_limit, uint8 *vector_state)

and it returns 0 (the caller reads what it retired from the state's
instruction counter: a region may chain into others through tail calls).
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import errors
from numba.extending import intrinsic

__all__ = ["call_region", "call_run_loop"]


@intrinsic
def call_region(typingctx, addr, st, mem, dec, limit, vec):
    """call_region(addr, st, mem, dec, limit, vec): run the region at addr."""
    sig = types.int64(addr, st, mem, dec, limit, vec)

    def codegen(context, builder, signature, args):
        a_addr, a_st, a_mem, a_dec, a_limit, a_vec = args
        st_s = context.make_array(signature.args[1])(context, builder, a_st)
        mem_s = context.make_array(signature.args[2])(context, builder, a_mem)
        dec_s = context.make_array(signature.args[3])(context, builder, a_dec)
        vec_s = context.make_array(signature.args[5])(context, builder, a_vec)
        i8p = ir.IntType(8).as_pointer()
        i64 = ir.IntType(64)
        fnty = ir.FunctionType(i64, [i8p, i8p, i8p, i64, i64, i64, i8p])
        fn = builder.inttoptr(a_addr, fnty.as_pointer())
        nmem = builder.extract_value(mem_s.shape, 0)
        nrows = builder.extract_value(dec_s.shape, 0)
        return builder.call(fn, [builder.bitcast(st_s.data, i8p), builder.bitcast(mem_s.data, i8p),
                                 builder.bitcast(dec_s.data, i8p), nmem, nrows, a_limit,
                                 builder.bitcast(vec_s.data, i8p)])

    return sig, codegen


@intrinsic
def call_run_loop(typingctx, addr, dec, mem, st, max_cycles, vec, wts, lbls, causal, acausal, resets,
                  touched, io_space, sleep_advances, hot, sync, corr_cycles):
    """call_run_loop(addr, <the arguments of twin.ppu.interp._run>): run the
    interpreter loop through its C entry at addr (twin.ppu.interp.run_loop_address).

    Each array goes as its data pointer followed by its shape, each scalar as
    an int64, in argument order: the C signature built by
    twin.ppu.interp._run_c_signature.  Calling through the address keeps the
    interpreter out of every loop that calls it: they compile (and are
    cached) without it, instead of linking and optimising it again each."""
    arrays = (dec, mem, st, vec, wts, lbls, causal, acausal, resets, touched)
    for a in arrays:
        if not isinstance(a, types.Array) or a.layout != "C":
            raise errors.TypingError(f"call_run_loop needs C-contiguous arrays, got {a}")
    sig = types.int64(addr, dec, mem, st, max_cycles, vec, wts, lbls, causal, acausal, resets, touched,
                      io_space, sleep_advances, hot, sync, corr_cycles)

    def codegen(context, builder, signature, args):
        i8p = ir.IntType(8).as_pointer()
        i64 = ir.IntType(64)
        c_args, c_types = [], []
        for ty, val in zip(signature.args[1:], args[1:]):
            if isinstance(ty, types.Array):
                a = context.make_array(ty)(context, builder, val)
                c_args.append(builder.bitcast(a.data, i8p))
                c_types.append(i8p)
                for d in range(ty.ndim):
                    c_args.append(builder.extract_value(a.shape, d))
                    c_types.append(i64)
            else:
                c_args.append(context.cast(builder, val, ty, types.int64))
                c_types.append(i64)
        fn = builder.inttoptr(args[0], ir.FunctionType(i64, c_types).as_pointer())
        return builder.call(fn, c_args)

    return sig, codegen
