"""Vectors of 64 bytes for the jitted kernels: 16 float32 or 8 float64 lanes.

LLVM vectorises a plain loop over contiguous elements, but it keeps a
kernel's accumulators in memory whenever they live in an array: numba
cannot tell LLVM that the accumulator array and the inputs never overlap,
so every multiply-add then loads and stores its accumulator. A register-
blocked kernel (a tile of outputs summed over all its taps before it is
written) needs its accumulators to be values. These functions give a
kernel such values, each one LLVM vector instruction or a few; a kernel's
vector variables live in registers (AVX-512 has 32 of them), or are split
into halves where the CPU has 32-byte vectors only.

    acc = splat(0.0, x)                        # every lane 0 (x: any array of the dtype)
    acc = fma(load(x, i), splat_at(w, k), acc) # acc + x[i:i+lanes] * w[k], rounded once
    s = sub(add(a, b), c)                      # a + b - c, lane by lane
    store(y, j, relu(acc))                     # y[j:j+lanes] = max(acc, 0)
    store_first(y, j, acc, n)                  # y[j:j+n] = acc[:n], n < lanes
    transpose(a, s, sa, b, d, sb)              # a square of lanes x lanes, transposed

The arrays are 1-d and C-contiguous, and [i, i + lanes) must lie inside
them: nothing is checked (a kernel proves it once, outside its loops).
Called from plain Python (NUMBA_DISABLE_JIT=1) they do the same with
NumPy arrays, so a kernel can be stepped through in a debugger.

numba's on-disk cache of a kernel is keyed by the kernel's own file: after
a change here, delete the ``__pycache__`` folders of ``npcnn/ops`` (or set
NUMBA_CACHE_DIR to a fresh folder), or the kernels keep the old code.
"""
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.datamodel import models, register_default
from numba.extending import intrinsic, overload

VECTOR_BYTES = 64


def lanes(dtype):
    """Lanes of a vector of ``dtype``: 16 float32, 8 float64."""
    return VECTOR_BYTES // np.dtype(dtype).itemsize


def lanes_of(array):
    """Lanes of a vector of ``array``'s dtype (in jitted code too)."""
    return VECTOR_BYTES // array.itemsize


@overload(lanes_of, inline="always")
def _lanes_of_jit(array):
    return lambda array: VECTOR_BYTES // array.itemsize


def whole_vectors(count, lanes):
    """``count`` elements rounded up to a whole number of vectors of
    ``lanes`` lanes: the row length of a kernel's padded rows (in jitted
    code too)."""
    return -(-count // lanes) * lanes


@overload(whole_vectors, inline="always")
def _whole_vectors_jit(count, lanes):
    return lambda count, lanes: -(-count // lanes) * lanes


class Vector(types.Type):
    """A numba type: ``count`` lanes of the float type ``dtype``."""

    def __init__(self, dtype, count):
        self.dtype, self.count = dtype, count
        super().__init__(name=f"Vector({dtype}, {count})")


@register_default(Vector)
class _VectorModel(models.PrimitiveModel):
    """Held in LLVM as <count x float> (or double): a register, not memory."""

    def __init__(self, dmm, fe_type):
        element = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(element, fe_type.count))


def _vector_type(dtype):
    return Vector(dtype, VECTOR_BYTES // (dtype.bitwidth // 8))


@intrinsic
def _splat(typingctx, value, like):
    vty = _vector_type(like.dtype)

    def codegen(context, builder, sig, args):
        scalar = context.cast(builder, args[0], sig.args[0], vty.dtype)
        llty = context.get_value_type(vty)
        vec = ir.Constant(llty, ir.Undefined)
        for k in range(vty.count):
            vec = builder.insert_element(vec, scalar, ir.Constant(ir.IntType(32), k))
        return vec
    return vty(value, like), codegen


def _element_pointer(context, builder, arrty, array, index):
    ary = context.make_array(arrty)(context, builder, array)
    return builder.gep(ary.data, [index])


@intrinsic
def _load(typingctx, array, index):
    vty = _vector_type(array.dtype)

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        vptr = builder.bitcast(ptr, context.get_value_type(vty).as_pointer())
        return builder.load(vptr, align=array.dtype.bitwidth // 8)
    return vty(array, types.intp), codegen


@intrinsic
def _splat_at(typingctx, array, index):
    vty = _vector_type(array.dtype)

    def codegen(context, builder, sig, args):
        value = builder.load(_element_pointer(context, builder, sig.args[0], args[0], args[1]))
        vec = ir.Constant(context.get_value_type(vty), ir.Undefined)
        for k in range(vty.count):
            vec = builder.insert_element(vec, value, ir.Constant(ir.IntType(32), k))
        return vec
    return vty(array, types.intp), codegen


@intrinsic
def _store(typingctx, array, index, vector):
    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        vptr = builder.bitcast(ptr, args[2].type.as_pointer())
        builder.store(args[2], vptr, align=array.dtype.bitwidth // 8)
        return context.get_dummy_value()
    return types.none(array, types.intp, vector), codegen


@intrinsic
def _fma(typingctx, a, b, acc):
    def codegen(context, builder, sig, args):
        vty = args[0].type
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty] * 3),
                                            f"llvm.fma.v{a.count}f{a.dtype.bitwidth}")
        return builder.call(fn, list(args))
    return a(a, a, a), codegen


@intrinsic
def _add(typingctx, a, b):
    def codegen(context, builder, sig, args):
        return builder.fadd(args[0], args[1])
    return a(a, a), codegen


@intrinsic
def _sub(typingctx, a, b):
    def codegen(context, builder, sig, args):
        return builder.fsub(args[0], args[1])
    return a(a, a), codegen


@intrinsic
def _store_first(typingctx, array, index, vector, count):
    def codegen(context, builder, sig, args):
        target, at, vec, n = args
        L = vector.count
        ptr = builder.bitcast(_element_pointer(context, builder, sig.args[0], target, at), vec.type.as_pointer())
        lanes_ = ir.Constant(ir.VectorType(ir.IntType(64), L), list(range(L)))
        limit = ir.Constant(ir.VectorType(ir.IntType(64), L), ir.Undefined)
        for k in range(L):
            limit = builder.insert_element(limit, n, ir.Constant(ir.IntType(32), k))
        mask = builder.icmp_signed("<", lanes_, limit)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [vec.type, ptr.type, ir.IntType(32), mask.type]),
            f"llvm.masked.store.v{L}f{vector.dtype.bitwidth}.p0")
        builder.call(fn, [vec, ptr, ir.Constant(ir.IntType(32), array.dtype.bitwidth // 8), mask])
        return context.get_dummy_value()
    return types.none(array, types.intp, vector, types.intp), codegen


@intrinsic
def _relu(typingctx, vector):
    def codegen(context, builder, sig, args):
        v = args[0]
        zero = cgutils.get_null_value(v.type)
        return builder.select(builder.fcmp_ordered("<=", v, zero), zero, v)
    return vector(vector), codegen


@intrinsic
def _transpose(typingctx, src, s, src_stride, dst, d, dst_stride):
    vty = _vector_type(src.dtype)
    L = vty.count

    def codegen(context, builder, sig, args):
        src_ty, _, _, dst_ty, _, _ = sig.args
        source, s, s_step, target, d, d_step = args
        vptr_ty = context.get_value_type(vty).as_pointer()
        align = src.dtype.bitwidth // 8
        rows = []
        for i in range(L):
            at = builder.add(s, builder.mul(s_step, ir.Constant(s_step.type, i)))
            ptr = builder.bitcast(_element_pointer(context, builder, src_ty, source, at), vptr_ty)
            rows.append(builder.load(ptr, align=align))
        # Butterflies: the stage of bit b swaps the off-diagonal b x b blocks
        # of every 2b x 2b block; after the stages of L/2 ... 1, row j holds
        # column j.
        b = L // 2
        while b:
            low = ir.Constant(ir.VectorType(ir.IntType(32), L), [j if not j & b else L + j - b for j in range(L)])
            high = ir.Constant(ir.VectorType(ir.IntType(32), L), [j + b if not j & b else L + j for j in range(L)])
            for i in range(L):
                if not i & b:
                    rows[i], rows[i + b] = (builder.shuffle_vector(rows[i], rows[i + b], low),
                                            builder.shuffle_vector(rows[i], rows[i + b], high))
            b //= 2
        for j in range(L):
            at = builder.add(d, builder.mul(d_step, ir.Constant(d_step.type, j)))
            ptr = builder.bitcast(_element_pointer(context, builder, dst_ty, target, at), vptr_ty)
            builder.store(rows[j], ptr, align=align)
        return context.get_dummy_value()
    return types.none(src, types.intp, types.intp, dst, types.intp, types.intp), codegen


# The plain-Python versions (what the kernels compute), and their jitted forms.

def splat(value, like):
    """A vector whose every lane is ``value``, of ``like``'s dtype."""
    return np.full(lanes(like.dtype), value, dtype=like.dtype)


def load(array, i):
    """array[i:i + lanes], a vector."""
    return array[i:i + lanes(array.dtype)].copy()


def store(array, i, vector):
    """array[i:i + lanes] = vector."""
    array[i:i + vector.size] = vector


def splat_at(array, i):
    """A vector whose every lane is array[i]."""
    return np.full(lanes(array.dtype), array[i], dtype=array.dtype)


def fma(a, b, acc):
    """acc + a * b, lane by lane (fused: rounded once when jitted)."""
    return acc + a * b


def add(a, b):
    """a + b, lane by lane."""
    return a + b


def sub(a, b):
    """a - b, lane by lane."""
    return a - b


def transpose(src, s, src_stride, dst, d, dst_stride):
    """dst[d + j*dst_stride + i] = src[s + i*src_stride + j] for i, j < lanes:
    a square block of lanes x lanes elements, transposed (its rows are
    ``src_stride`` apart, and ``dst_stride`` apart where it goes)."""
    L = lanes(src.dtype)
    block = np.array([src[s + i * src_stride:s + i * src_stride + L] for i in range(L)])
    for j in range(L):
        dst[d + j * dst_stride:d + j * dst_stride + L] = block[:, j]


def store_first(array, i, vector, count):
    """array[i:i + count] = vector[:count], count < lanes: the lanes past
    ``count`` are not written (nor read), so the vector may end past the
    array."""
    array[i:i + count] = vector[:count]


def relu(vector):
    """0 where a lane is <= 0, the lane elsewhere: NaN stays NaN, as in
    ``activation.relu``."""
    return np.where(vector <= 0, vector.dtype.type(0), vector)


@overload(splat, inline="always")
def _splat_jit(value, like):
    return lambda value, like: _splat(value, like)


@overload(load, inline="always")
def _load_jit(array, i):
    return lambda array, i: _load(array, i)


@overload(store, inline="always")
def _store_jit(array, i, vector):
    return lambda array, i, vector: _store(array, i, vector)


@overload(splat_at, inline="always")
def _splat_at_jit(array, i):
    return lambda array, i: _splat_at(array, i)


@overload(fma, inline="always")
def _fma_jit(a, b, acc):
    return lambda a, b, acc: _fma(a, b, acc)


@overload(add, inline="always")
def _add_jit(a, b):
    return lambda a, b: _add(a, b)


@overload(sub, inline="always")
def _sub_jit(a, b):
    return lambda a, b: _sub(a, b)


@overload(transpose, inline="always")
def _transpose_jit(src, s, src_stride, dst, d, dst_stride):
    return lambda src, s, src_stride, dst, d, dst_stride: _transpose(src, s, src_stride, dst, d, dst_stride)


@overload(store_first, inline="always")
def _store_first_jit(array, i, vector, count):
    return lambda array, i, vector, count: _store_first(array, i, vector, count)


@overload(relu, inline="always")
def _relu_jit(vector):
    return lambda vector: _relu(vector)
