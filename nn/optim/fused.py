"""The optimizer updates as CUDA kernels: one launch per parameter for a whole step.

The generic update of each optimizer (``_update`` in sgd.py, rmsprop.py, adam.py) is a
dozen array operations, each a kernel of its own on a GPU that reads and writes the whole
parameter; here one thread per element does them all, reading each array once and writing
each once. Each optimizer dispatches with one visible decision::

    if kernels.use_kernel(p.data) and fused.supported(p.data, grad, state, group):
        fused.adam(p.data, grad, state, group, ...)  # the whole step, in one launch
        return
    ...  # the generic xp update: the kernel's reference, unchanged

The kernels do the generic path's operations in the same order and precision, so their
results are the same bit for bit (``tests/test_optim_kernels.py`` checks that on the CPU
emulator in every ``make test``, and on a GPU in ``make gpu-check``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorgrad import kernels
from tensorgrad.backend import get_array_module
from tensorgrad.tensor import Tensor

_UPDATES = kernels.CudaSource("optim", r"""
// Optimizer steps on a GPU: one thread per element of the parameter (a grid-stride loop,
// flat indices in 64 bits) does the whole update of that element. The parameter and the
// state are updated in place: each comes twice, as the input it is read from and the
// output it is written to, which optim/fused.py passes as the same array (so no
// __restrict__). A thread touches only its own element and reads it before writing it.
// A buffer the optimizer does not keep (RMSprop's grad_avg unless centered, ...) is an
// empty array that is never read or written.
//
// The arithmetic is the generic path's (nn/optim/*.py), one operation at a time in the
// same order and in the parameter's precision T, the hyperparameters rounded to T (as
// NumPy and CuPy round a Python float operand). Compiled with --fmad=false, so that no
// a*b + c becomes a fused multiply-add (one rounding instead of the generic path's two):
// the results equal the generic path's bit for bit.

__device__ __forceinline__ float tg_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double tg_sqrt(double x) { return sqrt(x); }

template <typename T>
__device__ void sgd(const T* grad, const T* param, T* param_out, const T* buf, T* buf_out,
                    long long total, T lr, T weight_decay, T momentum, T undamped,
                    int maximize, int decay, int use_momentum, int first, int nesterov) {
    // each thread updates one element θ of the parameter and, with momentum, the same
    // element b of the momentum buffer (on the first step b starts as the gradient)
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total;
         t += (long long)blockDim.x * gridDim.x) {
        const T theta = param[t];
        T g = grad[t];
        if (maximize) g = -g;
        if (decay) g = g + weight_decay * theta;
        if (use_momentum) {
            T b = g;
            if (!first) {
                b = buf[t] * momentum;
                b = b + undamped * g;  // undamped = 1 − dampening
            }
            buf_out[t] = b;
            g = nesterov ? g + momentum * b : b;
        }
        param_out[t] = theta - lr * g;
    }
}

template <typename T>
__device__ void rmsprop(const T* grad, const T* param, T* param_out, const T* square_avg,
                        T* square_avg_out, const T* grad_avg, T* grad_avg_out, const T* buf,
                        T* buf_out, long long total, T lr, T alpha, T one_minus_alpha,
                        T eps, T weight_decay, T momentum, int maximize, int decay,
                        int centered, int use_momentum) {
    // each thread updates one element of the parameter, of square_avg and, when kept, of
    // grad_avg (centered) and of the momentum buffer
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total;
         t += (long long)blockDim.x * gridDim.x) {
        const T theta = param[t];
        T g = grad[t];
        if (maximize) g = -g;
        if (decay) g = g + weight_decay * theta;
        T v = square_avg[t] * alpha;
        v = v + one_minus_alpha * g * g;  // ((1 − α)·g)·g, NumPy's order
        square_avg_out[t] = v;
        T avg;
        if (centered) {
            T mean = grad_avg[t];
            mean = mean + one_minus_alpha * (g - mean);
            grad_avg_out[t] = mean;
            avg = tg_sqrt(v - mean * mean);
        } else {
            avg = tg_sqrt(v);
        }
        avg = avg + eps;
        if (use_momentum) {
            T b = buf[t] * momentum;
            b = b + g / avg;
            buf_out[t] = b;
            param_out[t] = theta - lr * b;
        } else {
            param_out[t] = theta - lr * (g / avg);
        }
    }
}

template <typename T>
__device__ void adam(const T* grad, const T* param, T* param_out, const T* exp_avg,
                     T* exp_avg_out, const T* exp_avg_sq, T* exp_avg_sq_out,
                     const T* max_exp_avg_sq, T* max_exp_avg_sq_out, long long total,
                     T one_minus_beta1, T beta2, T one_minus_beta2, T eps, T weight_decay,
                     T decay_factor, T step_size, T bias_correction2_sqrt, int maximize,
                     int decay, int decoupled, int amsgrad) {
    // each thread updates one element of the parameter, of exp_avg, of exp_avg_sq and,
    // with amsgrad, of max_exp_avg_sq; decay_factor = 1 − lr·λ (AdamW), step_size =
    // lr / (1 − β₁ᵗ) and bias_correction2_sqrt = √(1 − β₂ᵗ), computed in double by Python
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total;
         t += (long long)blockDim.x * gridDim.x) {
        T theta = param[t];
        T g = grad[t];
        if (maximize) g = -g;
        if (decay) {
            if (decoupled) {
                theta = theta * decay_factor;
            } else {
                g = g + weight_decay * theta;
            }
        }
        T m = exp_avg[t];
        m = m + one_minus_beta1 * (g - m);
        exp_avg_out[t] = m;
        T v = exp_avg_sq[t] * beta2;
        v = v + one_minus_beta2 * g * g;  // ((1 − β₂)·g)·g, NumPy's order
        exp_avg_sq_out[t] = v;
        T root_of = v;
        if (amsgrad) {
            const T old = max_exp_avg_sq[t];
            root_of = (v > old || v != v) ? v : old;  // maximum(old, v), NaN wins as NumPy's
            max_exp_avg_sq_out[t] = root_of;
        }
        T d = tg_sqrt(root_of);
        d = d / bias_correction2_sqrt;
        d = d + eps;
        d = m / d;
        d = d * step_size;
        param_out[t] = theta - d;
    }
}

extern "C" __global__ void sgd_f32(const float* grad, const float* param, float* param_out,
                                   const float* buf, float* buf_out, long long total,
                                   float lr, float weight_decay, float momentum,
                                   float undamped, int maximize, int decay,
                                   int use_momentum, int first, int nesterov) {
    sgd(grad, param, param_out, buf, buf_out, total, lr, weight_decay, momentum, undamped,
        maximize, decay, use_momentum, first, nesterov);
}

extern "C" __global__ void sgd_f64(const double* grad, const double* param,
                                   double* param_out, const double* buf, double* buf_out,
                                   long long total, double lr, double weight_decay,
                                   double momentum, double undamped, int maximize,
                                   int decay, int use_momentum, int first, int nesterov) {
    sgd(grad, param, param_out, buf, buf_out, total, lr, weight_decay, momentum, undamped,
        maximize, decay, use_momentum, first, nesterov);
}

extern "C" __global__ void rmsprop_f32(const float* grad, const float* param,
                                       float* param_out, const float* square_avg,
                                       float* square_avg_out, const float* grad_avg,
                                       float* grad_avg_out, const float* buf,
                                       float* buf_out, long long total, float lr,
                                       float alpha, float one_minus_alpha, float eps,
                                       float weight_decay, float momentum, int maximize,
                                       int decay, int centered, int use_momentum) {
    rmsprop(grad, param, param_out, square_avg, square_avg_out, grad_avg, grad_avg_out, buf,
            buf_out, total, lr, alpha, one_minus_alpha, eps, weight_decay, momentum, maximize,
            decay, centered, use_momentum);
}

extern "C" __global__ void rmsprop_f64(const double* grad, const double* param,
                                       double* param_out, const double* square_avg,
                                       double* square_avg_out, const double* grad_avg,
                                       double* grad_avg_out, const double* buf,
                                       double* buf_out, long long total, double lr,
                                       double alpha, double one_minus_alpha, double eps,
                                       double weight_decay, double momentum, int maximize,
                                       int decay, int centered, int use_momentum) {
    rmsprop(grad, param, param_out, square_avg, square_avg_out, grad_avg, grad_avg_out, buf,
            buf_out, total, lr, alpha, one_minus_alpha, eps, weight_decay, momentum, maximize,
            decay, centered, use_momentum);
}

extern "C" __global__ void adam_f32(const float* grad, const float* param, float* param_out,
                                    const float* exp_avg, float* exp_avg_out,
                                    const float* exp_avg_sq, float* exp_avg_sq_out,
                                    const float* max_exp_avg_sq, float* max_exp_avg_sq_out,
                                    long long total, float one_minus_beta1, float beta2,
                                    float one_minus_beta2, float eps, float weight_decay,
                                    float decay_factor, float step_size,
                                    float bias_correction2_sqrt, int maximize, int decay,
                                    int decoupled, int amsgrad) {
    adam(grad, param, param_out, exp_avg, exp_avg_out, exp_avg_sq, exp_avg_sq_out,
         max_exp_avg_sq, max_exp_avg_sq_out, total, one_minus_beta1, beta2, one_minus_beta2,
         eps, weight_decay, decay_factor, step_size, bias_correction2_sqrt, maximize, decay,
         decoupled, amsgrad);
}

extern "C" __global__ void adam_f64(const double* grad, const double* param,
                                    double* param_out, const double* exp_avg,
                                    double* exp_avg_out, const double* exp_avg_sq,
                                    double* exp_avg_sq_out, const double* max_exp_avg_sq,
                                    double* max_exp_avg_sq_out, long long total,
                                    double one_minus_beta1, double beta2,
                                    double one_minus_beta2, double eps, double weight_decay,
                                    double decay_factor, double step_size,
                                    double bias_correction2_sqrt, int maximize, int decay,
                                    int decoupled, int amsgrad) {
    adam(grad, param, param_out, exp_avg, exp_avg_out, exp_avg_sq, exp_avg_sq_out,
         max_exp_avg_sq, max_exp_avg_sq_out, total, one_minus_beta1, beta2, one_minus_beta2,
         eps, weight_decay, decay_factor, step_size, bias_correction2_sqrt, maximize, decay,
         decoupled, amsgrad);
}
""", functions=("sgd_f32", "sgd_f64", "rmsprop_f32", "rmsprop_f64", "adam_f32", "adam_f64"),
    options=("--fmad=false",))

# the hyperparameters the kernels read, by optimizer (``betas`` is a pair)
_HYPERPARAMETERS = ("lr", "momentum", "dampening", "weight_decay", "alpha", "eps", "betas")


def supported(param: Any, grad: Any, state: dict[str, Any], group: dict[str, Any]) -> bool:
    """The case the kernels handle: a float32/float64 parameter, C-contiguous as its state
    buffers (updated in place), and hyperparameters that are Python numbers. (A NumPy
    scalar such as np.float64(0.1) would make the generic path compute in its precision
    rather than the parameter's, which the kernels do not copy.)"""
    dtype = param.dtype
    if dtype not in kernels.FLOAT_SUFFIX or grad.dtype != dtype or not param.flags.c_contiguous:
        return False
    for value in state.values():
        if isinstance(value, Tensor) and (value.data.dtype != dtype
                                          or not value.data.flags.c_contiguous):
            return False
    numbers = [group[k] for k in _HYPERPARAMETERS if k in group and k != "betas"]
    numbers += list(group.get("betas", ()))
    return all(type(v) in (int, float) for v in numbers)


def _common(param: Any, grad: Any) -> tuple:
    """(grad as a C-contiguous array, the parameter's scalar type, an empty array standing
    for a buffer the optimizer does not keep, the entry-point suffix)."""
    xp = get_array_module(param)
    dtype = param.dtype  # dtype.type: np.float32 or np.float64, a kernel's float or double
    return (xp.ascontiguousarray(grad), dtype.type, xp.empty(0, dtype=dtype),
            kernels.FLOAT_SUFFIX[dtype])


def sgd(param: Any, grad: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
    """SGD's step (sgd.py) on ``param`` in place, as one launch; creates the momentum
    buffer on the first step with momentum."""
    grad, real, absent, suffix = _common(param, grad)
    momentum = group["momentum"]
    first = momentum != 0 and "momentum_buffer" not in state
    if first:  # the kernel writes it: b starts as the gradient
        state["momentum_buffer"] = Tensor(get_array_module(param).empty_like(param))
    buf = state["momentum_buffer"].data if momentum != 0 else absent
    kernels.launch(_UPDATES, f"sgd_{suffix}", param.size, (
        grad, param, param, buf, buf, np.int64(param.size), real(group["lr"]),
        real(group["weight_decay"]), real(momentum), real(1 - group["dampening"]),
        *kernels.int32s(group["maximize"], group["weight_decay"] != 0, momentum != 0, first,
                        group["nesterov"])))


def rmsprop(param: Any, grad: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
    """RMSprop's step (rmsprop.py) on ``param`` and its state in place, as one launch."""
    grad, real, absent, suffix = _common(param, grad)
    centered, momentum = group["centered"], group["momentum"]
    square_avg = state["square_avg"].data
    grad_avg = state["grad_avg"].data if centered else absent
    buf = state["momentum_buffer"].data if momentum > 0 else absent
    kernels.launch(_UPDATES, f"rmsprop_{suffix}", param.size, (
        grad, param, param, square_avg, square_avg, grad_avg, grad_avg, buf, buf,
        np.int64(param.size), real(group["lr"]), real(group["alpha"]),
        real(1 - group["alpha"]), real(group["eps"]), real(group["weight_decay"]),
        real(momentum), *kernels.int32s(group["maximize"], group["weight_decay"] != 0,
                                        centered, momentum > 0)))


def adam(param: Any, grad: Any, state: dict[str, Any], group: dict[str, Any], *, decoupled: bool,
         step_size: float, bias_correction2_sqrt: float) -> None:
    """Adam's or AdamW's step (adam.py) on ``param`` and its state in place, as one
    launch; ``step_size`` and ``bias_correction2_sqrt`` are the generic path's own."""
    grad, real, absent, suffix = _common(param, grad)
    (beta1, beta2), lr, weight_decay = group["betas"], group["lr"], group["weight_decay"]
    exp_avg, exp_avg_sq = state["exp_avg"].data, state["exp_avg_sq"].data
    max_sq = state["max_exp_avg_sq"].data if group["amsgrad"] else absent
    kernels.launch(_UPDATES, f"adam_{suffix}", param.size, (
        grad, param, param, exp_avg, exp_avg, exp_avg_sq, exp_avg_sq, max_sq, max_sq,
        np.int64(param.size), real(1 - beta1), real(beta2), real(1 - beta2),
        real(group["eps"]), real(weight_decay), real(1 - lr * weight_decay), real(step_size),
        real(bias_correction2_sqrt), *kernels.int32s(group["maximize"], weight_decay != 0,
                                                     decoupled, group["amsgrad"])))
