// The attention kernel's body: included by core/kernels_impl.h inside its anonymous namespace,
// after the vector helpers (vf, Load, Store, Splat, Exp, ...). Per (batch, head) and tile of query
// rows:
//   S = Q_tile K^T        register-blocked, K packed as panels of SC*W keys x d (L1-sized)
//   P = exp(S - rowmax)   the exact two-pass softmax: the tile's whole score rows stay in L2
//   O = P V / rowsum      register-blocked over blocks of keys, V packed [n, d rounded up to W]
// It reads Q, K and V in place (any row stride), so the fused qkv projection is never copied.

constexpr int64_t SR = VMAE_SR, SC = VMAE_SC, PR = VMAE_PR, PC = VMAE_PC;
constexpr int64_t CW = SC * W;             // keys per packed K panel
constexpr int64_t RP = SR > PR ? SR : PR;  // tile rows are padded to a multiple of this
constexpr int64_t KEY_BLOCK = 128;         // keys per P*V pass: 128 rows of V stay in L1

int64_t AttnPackedKSize(int64_t n, int64_t d) { return RoundUp(RoundUp(n, CW) * d, 16); }
int64_t AttnPackedSize(int64_t n, int64_t d) { return AttnPackedKSize(n, d) + RoundUp(n * RoundUp(d, W), 16); }

// Scratch: Q tile [rows_pad, d] | S [rows_pad, n_pad] | O [rows_pad, d_pad] | 1/rowsum [rows_pad]
int64_t AttnScratchSize(int64_t n, int64_t d, int64_t tile_rows) {
  const int64_t rp = RoundUp(tile_rows, RP);
  return RoundUp(rp * d, 16) + RoundUp(rp * RoundUp(n, CW), 16) + RoundUp(rp * RoundUp(d, W), 16) +
         RoundUp(rp, 16);
}

void AttnPack(const AttentionHead& h, float* packed) {
  const int64_t n = h.n, d = h.d, dp = RoundUp(d, W), panels = RoundUp(n, CW) / CW;
  float* kp = packed;
  for (int64_t pb = 0; pb < panels; ++pb) {
    float* panel = kp + pb * d * CW;
    for (int64_t jj = 0; jj < CW; ++jj) {
      const int64_t j = pb * CW + jj;
      if (j < n) {
        const float* row = h.k + j * h.k_stride;
        for (int64_t c = 0; c < d; ++c) panel[c * CW + jj] = row[c];
      } else {
        for (int64_t c = 0; c < d; ++c) panel[c * CW + jj] = 0.0f;
      }
    }
  }
  float* vp = packed + AttnPackedKSize(n, d);
  for (int64_t j = 0; j < n; ++j) {
    std::memcpy(vp + j * dp, h.v + j * h.v_stride, d * sizeof(float));
    for (int64_t c = d; c < dp; ++c) vp[j * dp + c] = 0.0f;
  }
}

// S[i0 .. i0+SR) x [panel) = Q rows . K panel, over the whole head dimension.
inline void AttnScoreBlock(const float* q, int64_t d, const float* panel, float* s, int64_t s_stride) {
  vf acc[SR][SC];
#pragma GCC unroll 8
  for (int64_t r = 0; r < SR; ++r) {
#pragma GCC unroll 8
    for (int64_t c = 0; c < SC; ++c) acc[r][c] = Splat(0.0f);
  }
  for (int64_t k = 0; k < d; ++k) {
    vf kv[SC];
#pragma GCC unroll 8
    for (int64_t c = 0; c < SC; ++c) kv[c] = Load(panel + k * CW + c * W);
#pragma GCC unroll 8
    for (int64_t r = 0; r < SR; ++r) {
      const vf qb = Splat(q[r * d + k]);
#pragma GCC unroll 8
      for (int64_t c = 0; c < SC; ++c) acc[r][c] += qb * kv[c];
    }
  }
#pragma GCC unroll 8
  for (int64_t r = 0; r < SR; ++r) {
#pragma GCC unroll 8
    for (int64_t c = 0; c < SC; ++c) Store(s + r * s_stride + c * W, acc[r][c]);
  }
}

// O[i0 .. i0+PR) x [NC vectors) += P[rows, j0..j1) . V[j0..j1, cols)
template <int NC>
inline void AttnPvBlock(const float* p, int64_t p_stride, const float* v, int64_t v_stride, int64_t j0,
                    int64_t j1, float* o, int64_t o_stride) {
  vf acc[PR][NC];
#pragma GCC unroll 8
  for (int64_t r = 0; r < PR; ++r) {
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c) acc[r][c] = Load(o + r * o_stride + c * W);
  }
  for (int64_t j = j0; j < j1; ++j) {
    vf vv[NC];
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c) vv[c] = Load(v + j * v_stride + c * W);
#pragma GCC unroll 8
    for (int64_t r = 0; r < PR; ++r) {
      const vf pb = Splat(p[r * p_stride + j]);
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c) acc[r][c] += pb * vv[c];
    }
  }
#pragma GCC unroll 8
  for (int64_t r = 0; r < PR; ++r) {
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c) Store(o + r * o_stride + c * W, acc[r][c]);
  }
}

void AttnTile(const AttentionHead& h, const float* packed, int64_t row0, int64_t rows, int64_t tile_rows,
          float* scratch) {
  const int64_t n = h.n, d = h.d, dp = RoundUp(d, W), np = RoundUp(n, CW);
  const int64_t rp = RoundUp(rows, RP);
  const int64_t trp = RoundUp(tile_rows, RP);
  float* qt = scratch;
  float* s = qt + RoundUp(trp * d, 16);
  float* o = s + RoundUp(trp * np, 16);
  float* inv = o + RoundUp(trp * dp, 16);
  const float* kp = packed;
  const float* vp = packed + AttnPackedKSize(n, d);

  for (int64_t i = 0; i < rp; ++i) {
    if (i < rows) {
      std::memcpy(qt + i * d, h.q + (row0 + i) * h.q_stride, d * sizeof(float));
    } else {
      for (int64_t c = 0; c < d; ++c) qt[i * d + c] = 0.0f;
    }
  }
  // Panel-outer: one K panel stays in L1 while every row block of the tile uses it.
  for (int64_t pb = 0; pb < np / CW; ++pb) {
    for (int64_t i0 = 0; i0 < rp; i0 += SR) {
      AttnScoreBlock(qt + i0 * d, d, kp + pb * d * CW, s + i0 * np + pb * CW, np);
    }
  }
  const int64_t nv = n / W * W;
  for (int64_t i = 0; i < rows; ++i) {
    float* row = s + i * np;
    vf m = Splat(row[0]);
    for (int64_t j = 0; j < nv; j += W) m = Max(m, Load(row + j));
    float mx = ReduceMax(m);
    for (int64_t j = nv; j < n; ++j) mx = row[j] > mx ? row[j] : mx;
    vf sum = Splat(0.0f);
    for (int64_t j = 0; j < nv; j += W) {
      const vf e = Exp(Load(row + j) - mx);
      Store(row + j, e);
      sum += e;
    }
    float total = ReduceSum(sum);
    for (int64_t j = nv; j < n; ++j) {
      row[j] = Exp(Splat(row[j] - mx))[0];
      total += row[j];
    }
    inv[i] = 1.0f / total;
  }
  for (int64_t i = rows; i < rp; ++i) {
    for (int64_t j = 0; j < n; ++j) s[i * np + j] = 0.0f;
  }

  for (int64_t i = 0; i < rp * dp; ++i) o[i] = 0.0f;
  const int64_t vectors = dp / W;
  for (int64_t j0 = 0; j0 < n; j0 += KEY_BLOCK) {
    const int64_t j1 = Min(n, j0 + KEY_BLOCK);
    for (int64_t i0 = 0; i0 < rp; i0 += PR) {
      for (int64_t c0 = 0; c0 < vectors; c0 += PC) {
        const float* p = s + i0 * np;
        const float* v = vp + c0 * W;
        float* out = o + i0 * dp + c0 * W;
        switch (Min(PC, vectors - c0)) {
          case 1: AttnPvBlock<1>(p, np, v, dp, j0, j1, out, dp); break;
          case 2: AttnPvBlock<2>(p, np, v, dp, j0, j1, out, dp); break;
#if VMAE_PC >= 3
          case 3: AttnPvBlock<3>(p, np, v, dp, j0, j1, out, dp); break;
#endif
#if VMAE_PC >= 4
          case 4: AttnPvBlock<4>(p, np, v, dp, j0, j1, out, dp); break;
#endif
          default: break;
        }
      }
    }
  }
  for (int64_t i = 0; i < rows; ++i) {
    float* dst = h.out + (row0 + i) * h.out_stride;
    const float scale = inv[i];
    for (int64_t c = 0; c < d; ++c) dst[c] = o[i * dp + c] * scale;
  }
}

