"""Software prefetch for the training loop: start loading the rows the next batch will touch.

The step reads random rows of two [V, D] matrices (a context's input row, a centre's output row):
at text8's size the matrices are 48 MiB, beyond the caches, and a row that misses costs its load
latency while the core waits. ``prefetch_row`` issues LLVM's ``llvm.prefetch`` for every cache line
of a row (a hint: it changes no value, so results are bit-identical with and without it) while
the current batch computes.
"""

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .kernel_cache import claim

claim()  # the kernel directory made, held in use and the other versions' pruned

_LINE_FLOATS = 16  # 64-byte cache lines of float32


@intrinsic
def _prefetch(typingctx, arr, row, col):
    """``llvm.prefetch`` (read, high locality, data cache) of the line holding ``arr[row, col]``."""
    if not isinstance(arr, types.Array) or arr.ndim != 2:
        return None

    def codegen(context, builder, sig, args):
        aryty = sig.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        row_i = context.cast(builder, args[1], sig.args[1], types.intp)
        col_i = context.cast(builder, args[2], sig.args[2], types.intp)
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [row_i, col_i])
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                            "llvm.prefetch.p0i8")
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(arr, row, col), codegen


@njit(cache=True, nogil=True)
def prefetch_row(arr, row):
    """Prefetch every cache line of ``arr[row]`` (row < arr.shape[0]: not checked)."""
    dim = arr.shape[1]
    for d in range(0, dim, _LINE_FLOATS):
        _prefetch(arr, row, d)
    _prefetch(arr, row, dim - 1)  # a row that does not start on a line spans one more
