// The linear kernel's body: included by core/kernels_impl.h inside its anonymous namespace, after
// the vector helpers. y = act(x W^T + bias) (+ residual), W packed once at load time into panels of
// LNR output columns: [ceil(n / LNR)][k][LNR]. The micro-kernel keeps an LR x LNR block of y in
// registers over the whole of k (x rows are broadcast, one panel row is loaded per k), then applies
// the bias, the activation and the residual while storing, so y is written exactly once.

constexpr int64_t LR = VMAE_LR, LC = VMAE_LC;
constexpr int64_t LNR = LC * W;  // output columns per panel

int64_t LinearPackedSize(int64_t n, int64_t k) { return RoundUp(n, LNR) * k; }

void LinearPack(const float* w, int64_t n, int64_t k, float* packed) {
  const int64_t panels = RoundUp(n, LNR) / LNR;
  for (int64_t p = 0; p < panels; ++p) {
    float* panel = packed + p * k * LNR;
    for (int64_t j = 0; j < LNR; ++j) {
      const int64_t col = p * LNR + j;
      if (col < n) {
        const float* row = w + col * k;
        for (int64_t kk = 0; kk < k; ++kk) panel[kk * LNR + j] = row[kk];
      } else {
        for (int64_t kk = 0; kk < k; ++kk) panel[kk * LNR + j] = 0.0f;
      }
    }
  }
}

// 0.5 x (1 + erf(x / sqrt 2)), erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), as ATen's
// vectorized CPU GELU computes it.
inline vf Gelu(vf x) {
  const vf z = x * 0.70710678118654752f;
  const vf zero = Splat(0.0f);
  const vi negative = z < zero;
  const vf az = Select(negative, -z, z);
  const vf t = 1.0f / (az * 0.3275911f + 1.0f);
  vf poly = t * 1.061405429f - 1.453152027f;
  poly = poly * t + 1.421413741f;
  poly = poly * t - 0.284496736f;
  poly = poly * t + 0.254829592f;
  poly = poly * t;
  const vf e = 1.0f - poly * Exp(-(az * az));
  const vf erf = Select(negative, -e, e);
  return 0.5f * x * (erf + 1.0f);
}

// Rows [i, i + R) x one panel. `cols` <= LNR valid output columns start at `col`.
template <int R>
inline void LinearBlock(const LinearArgs& a, int64_t i, const float* panel, int64_t col, int64_t cols) {
  vf acc[R][LC];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
    for (int64_t c = 0; c < LC; ++c) acc[r][c] = Splat(0.0f);
  }
  const float* x = a.x + i * a.ldx;
  for (int64_t kk = 0; kk < a.k; ++kk) {
    vf b[LC];
#pragma GCC unroll 8
    for (int64_t c = 0; c < LC; ++c) b[c] = Load(panel + kk * LNR + c * W);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const vf xv = Splat(x[r * a.ldx + kk]);
#pragma GCC unroll 8
      for (int64_t c = 0; c < LC; ++c) acc[r][c] += xv * b[c];
    }
  }
  float tmp[LNR];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    float* y = a.y + (i + r) * a.ldy + col;
    const float* res = a.residual ? a.residual + (i + r) * a.ldr + col : nullptr;
#pragma GCC unroll 8
    for (int64_t c = 0; c < LC; ++c) {
      vf v = acc[r][c];
      if (cols == LNR) {
        if (a.bias) v += Load(a.bias + col + c * W);
        if (a.activation == kLinearGelu) v = Gelu(v);
        if (res) v += Load(res + c * W);
        Store(y + c * W, v);
      } else {
        Store(tmp + c * W, v);
      }
    }
    if (cols != LNR) {
      // The last, partial panel: finish column by column.
      for (int64_t c = 0; c < cols; ++c) {
        float v = tmp[c];
        if (a.bias) v += a.bias[col + c];
        if (a.activation == kLinearGelu) v = Gelu(Splat(v))[0];
        if (res) v += res[c];
        y[c] = v;
      }
    }
  }
}

void LinearRun(const LinearArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; ++p) {
    const float* panel = a.packed + p * a.k * LNR;
    const int64_t col = p * LNR;
    const int64_t cols = Min(LNR, a.n - col);
    int64_t i = m0;
    for (; i + LR <= m1; i += LR) LinearBlock<LR>(a, i, panel, col, cols);
    switch (m1 - i) {
      case 1: LinearBlock<1>(a, i, panel, col, cols); break;
      case 2: LinearBlock<2>(a, i, panel, col, cols); break;
      case 3: LinearBlock<3>(a, i, panel, col, cols); break;
#if VMAE_LR > 4
      case 4: LinearBlock<4>(a, i, panel, col, cols); break;
      case 5: LinearBlock<5>(a, i, panel, col, cols); break;
#endif
#if VMAE_LR > 6
#error "LinearRun handles row remainders up to 5"
#endif
      default: break;
    }
  }
}
