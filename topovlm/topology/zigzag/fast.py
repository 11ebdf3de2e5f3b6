"""The fast zigzag engine: homology first, then the zigzag of small matrices.

Idea
----
Every complex of the zigzag is small in homology (a few components, tens to
hundreds of independent loops) but large in simplices (tens of thousands of
triangles). Instead of reducing one huge matrix of all simplices (the classic
zigzag algorithm, or FastZigzag's coned filtration), we

1. compute H0 and H1 of each of the 2L+1 complexes on its own with a fast
   standard-persistence backend (union-find for H0, ripser's cohomology for
   H1: a basis of cocycles of each layer complex ``K_l``, and a basis of
   cycles of each intersection ``K_{l,l+1}``);
2. write the maps induced by the inclusions
   ``H(K_l) <- H(K_{l,l+1}) -> H(K_{l+1})`` as small matrices over Z/2, by
   evaluating the cocycles of ``K_l`` on the cycles of ``K_{l,l+1}``;
3. decompose the resulting zigzag module ``V_0 <- W_0 -> V_1 <- ... -> V_L``
   into interval modules by a left-to-right sweep
   (:func:`decompose_zigzag_module`).

Step 3 is the right-filtration algorithm of Carlsson & de Silva,
"Zigzag persistence" (FoCM 2010, section 4) applied to an abstract module:
when classes must end (a forward map's kernel, or the part of a space not
hit by a backward map), the class that ends is the one that can absorb the
others by a change of basis that respects the interval decomposition.
Between two intervals ``[a, t]`` and ``[c, t]`` with ``a < c``, the
generator of ``[a, t]`` may absorb that of ``[c, t]`` iff ``c`` was born at a
backward arrow, and the generator of ``[c, t]`` may absorb that of ``[a, t]``
iff ``c`` was born at a forward arrow (compute Hom between the interval
modules). This gives the total order of :func:`_absorb_key`.

Cycles of an intersection complex: with edges ordered by weight and distinct
values, the fundamental cycles (w.r.t. the minimum spanning forest) of the
edges that create essential H1 classes form a basis of H1 — each has its
creating edge as its youngest edge, so these cycles are independent of the
boundaries, whose reduced columns end at the other positive edges.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from ripser import ripser
from scipy.sparse.csgraph import breadth_first_order, connected_components, minimum_spanning_tree

from ..barcode import Barcode
from ..complexes import ZigzagComplexes

# ----------------------------------------------------------------------------
# Step 3: decomposition of an abstract zigzag module over Z/2.
# Vectors are Python ints used as bit sets (bit r = coordinate r).
# ----------------------------------------------------------------------------


def _absorb_key(birth: int, forward: bool) -> tuple[int, int]:
    """Sort key, ascending = less able to absorb the others (see module doc)."""
    return (1, birth) if forward else (0, -birth)


def _apply(columns: list[int], vec: int) -> int:
    """Image of bit-set ``vec`` under the matrix given by its bit-set ``columns``."""
    out = 0
    while vec:
        low = vec & -vec
        out ^= columns[low.bit_length() - 1]
        vec ^= low
    return out


def _reduce_in_order(vectors: list[int]) -> list[tuple[int, int]]:
    """Column-reduce ``vectors`` left to right over Z/2.

    Returns, for each input vector, ``(reduced, combo)``: ``reduced`` is the
    vector after adding earlier reduced vectors to clear its pivots, ``combo``
    the bit set of input positions summed (itself included).
    """
    pivots: dict[int, tuple[int, int]] = {}
    out = []
    for i, v in enumerate(vectors):
        combo = 1 << i
        while v:
            p = v.bit_length() - 1
            if p not in pivots:
                pivots[p] = (v, combo)
                break
            pv, pc = pivots[p]
            v ^= pv
            combo ^= pc
        out.append((v, combo))
    return out


def decompose_zigzag_module(
    dims: list[int], backward: list[list[int]], forward: list[list[int]]
) -> list[tuple[int, int]]:
    """Barcode of a zigzag module ``V_0 <- W_0 -> V_1 <- W_1 -> ... -> V_L``.

    Parameters
    ----------
    dims : list of int, length 2L+1
        ``dims[t]`` is the dimension of the space at zigzag index t
        (``V_l`` at ``2l``, ``W_l`` at ``2l + 1``).
    backward : list of L matrices
        ``backward[l]`` is the map ``W_l -> V_l`` as a list of ``dims[2l+1]``
        columns, each a bit set over the basis of ``V_l``.
    forward : list of L matrices
        ``forward[l]`` is the map ``W_l -> V_{l+1}``, columns over ``V_{l+1}``.

    Returns
    -------
    list of (birth, death)
        Closed intervals in zigzag indices.
    """
    # generators alive at the current index: (vector, birth, born at a forward arrow)
    gens = [(1 << r, 0, True) for r in range(dims[0])]
    done: list[tuple[int, int]] = []
    for l in range(len(backward)):
        t = 2 * l
        # ---- backward arrow V_t <- W: keep what lies in the image --------
        cols = backward[l]
        red = _reduce_in_order(cols)
        img = {v.bit_length() - 1: (v, c) for v, c in red if v}
        kernel = [c for v, c in red if not v]

        pivmask = sum(1 << p for p in img)

        def reduce_mod_image(v: int, img=img, pivmask=pivmask) -> tuple[int, int]:
            """Canonical representative of v modulo the image (zero on every
            image pivot) and the preimage (bit set over W) of what was removed
            (this step's image: bound as defaults, the loop rebinds the names)."""
            pre = 0
            hit = v & pivmask
            while hit:
                iv, ic = img[hit.bit_length() - 1]
                v ^= iv
                pre ^= ic
                hit = v & pivmask
            return v, pre

        gens.sort(key=lambda g: _absorb_key(g[1], g[2]))
        quot, pres = zip(*(reduce_mod_image(g[0]) for g in gens)) if gens else ((), ())
        # Quotient reps are reduced against the image only; one more reduction
        # in absorbing order decides who survives.
        new_gens = []
        for i, (q, combo) in enumerate(_reduce_in_order(list(quot))):
            if q:
                done.append((gens[i][1], t))
                continue
            # sum of generators in `combo` lies in the image: lift it
            pre, c = 0, combo
            while c:
                low = c & -c
                pre ^= pres[low.bit_length() - 1]
                c ^= low
            new_gens.append((pre, gens[i][1], gens[i][2]))
        new_gens += [(kv, t + 1, False) for kv in kernel]
        gens = new_gens
        # ---- forward arrow W -> V_{t+2}: classes in the kernel end --------
        cols = forward[l]
        gens.sort(key=lambda g: _absorb_key(g[1], g[2]))
        images = [_apply(cols, g[0]) for g in gens]
        new_gens, pivots = [], set()
        for i, (w, _combo) in enumerate(_reduce_in_order(images)):
            if not w:
                done.append((gens[i][1], t + 1))
            else:
                new_gens.append((images[i], gens[i][1], gens[i][2]))
                pivots.add(w.bit_length() - 1)
        new_gens += [(1 << r, t + 2, True) for r in range(dims[t + 2]) if r not in pivots]
        gens = new_gens
    end = len(dims) - 1
    done += [(g[1], end) for g in gens]
    return done


# ----------------------------------------------------------------------------
# Steps 1-2: homology of each complex and the induced maps.
# ----------------------------------------------------------------------------


def _pack(matrix) -> list[int]:
    """Columns of a (rows, cols) 0/1 matrix, sparse or dense, as bit-set ints."""
    m = sp.csc_matrix(matrix)
    m.sum_duplicates()
    out = []
    for j in range(m.shape[1]):
        v = 0
        for r in m.indices[m.indptr[j] : m.indptr[j + 1]][m.data[m.indptr[j] : m.indptr[j + 1]] % 2 == 1].tolist():
            v |= 1 << r
        out.append(v)
    return out


def _graph(n: int, edges: np.ndarray, values: np.ndarray) -> sp.csr_matrix:
    return sp.coo_matrix((values, (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()


def _rank_values(weights: np.ndarray) -> np.ndarray:
    """Distinct positive filtration values 1..E in order of weight (ties by index)."""
    order = np.argsort(weights, kind="stable")
    vals = np.empty(len(weights), dtype=np.float64)
    vals[order] = np.arange(1, len(weights) + 1)
    return vals


def _mod2_product(a, b) -> sp.csc_matrix:
    """``a @ b`` over Z/2 for sparse 0/1 matrices (cycles and cocycles are sparse, and so
    is their pairing: kept sparse, a dense b x b result was most of the cost at N = 4,096)."""
    prod = (sp.csr_matrix(a, dtype=np.int32) @ sp.csc_matrix(b, dtype=np.int32)).tocsc()
    prod.data %= 2
    prod.eliminate_zeros()
    return prod


def _h2_cycle_basis(tri: np.ndarray, vals: np.ndarray, keys: np.ndarray, n: int, cocycles: np.ndarray) -> np.ndarray:
    """Cycles forming a basis of H2 of a flag complex, given a basis of its H^2.

    The boundary matrix of the triangles (columns, in filtration order) is
    column-reduced over Z/2 with the operations recorded, which gives a basis
    of all 2-cycles (no tetrahedra needed). Cycles pair with cohomology
    perfectly, so ``b`` cycles whose pairing matrix with the ``b`` cocycles is
    invertible are a basis of H2: we take them greedily.

    Parameters
    ----------
    tri : (T, 3) int64, triangles sorted by key
    vals : (E,) distinct filtration values 1..E of the edges ``keys``
    keys : (E,) sorted edge keys
    n : int, number of vertices
    cocycles : (b, T) sparse 0/1, a basis of H^2 over ``tri``

    Returns
    -------
    (T, b) sparse 0/1: column j is a 2-cycle (a set of triangles)
    """
    rank = vals.astype(np.int64) - 1  # bit of each edge: youngest edge = highest bit
    faces = np.stack(
        [rank[np.searchsorted(keys, tri[:, a] * n + tri[:, b])] for a, b in ((0, 1), (0, 2), (1, 2))], axis=1
    )
    faces.sort(axis=1)
    order = np.lexsort((faces[:, 0], faces[:, 1], faces[:, 2]))  # filtration order: faces before cofaces
    columns = [(1 << int(f0)) | (1 << int(f1)) | (1 << int(f2)) for f0, f1, f2 in faces[order].tolist()]
    kernel = [combo for col, combo in _reduce_in_order(columns) if not col]  # combos over positions in `order`
    rows, cols = [], []
    for j, z in enumerate(kernel):
        while z:
            low = z & -z
            rows.append(int(order[low.bit_length() - 1]))
            cols.append(j)
            z ^= low
    Z = sp.csc_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(len(tri), len(kernel)))
    pairing = _mod2_product(cocycles, Z)  # (b, |Z|)
    chosen = [j for j, (v, _) in enumerate(_reduce_in_order(_pack(pairing))) if v]
    if len(chosen) != cocycles.shape[0]:  # pragma: no cover - would mean a wrong cocycle basis
        raise RuntimeError(f"found {len(chosen)} independent 2-cycles for {cocycles.shape[0]} cocycles")
    return Z[:, chosen]


class _ComplexHomology:
    """H0 labels, H1 and H2 data of one flag complex.

    ``want`` is ``"cocycles"`` for a layer complex (a basis of cocycles of
    each dimension), ``"cycles"`` for an intersection (a basis of cycles),
    ``None`` for H0 only; ``max_dim`` is 1 or 2.
    """

    def __init__(
        self, n: int, keys: np.ndarray, weights: np.ndarray, want: str | None, max_dim: int = 1, triangles=None
    ):
        self.n, self.keys = n, keys
        edges = np.stack([keys // n, keys % n], axis=1)
        self.edges = edges
        if len(keys):
            g = _graph(n, edges, np.ones(len(keys)))
            self.n_comp, self.labels = connected_components(g, directed=False)
        else:
            self.n_comp, self.labels = n, np.arange(n)
        self.cocycles = sp.csr_matrix((0, len(keys)), dtype=np.int8)  # (b1, E) over self.keys
        self.cycle_edges = np.zeros(0, dtype=np.int64)  # positions (in keys) of H1 basis edges
        self.tri_keys = np.zeros(0, dtype=np.int64)  # (T,) sorted triangle keys (H2 only)
        self.cocycles2 = sp.csr_matrix((0, 0), dtype=np.int8)  # (b2, T) over self.tri_keys
        self.cycles2 = sp.csc_matrix((0, 0), dtype=np.int8)  # (T, b2) H2 basis cycles over self.tri_keys
        if want is None or len(keys) < 3:
            return
        if max_dim >= 2:
            tri = np.zeros((0, 3), np.int64) if triangles is None else np.asarray(triangles, np.int64)
            self.tri_keys = (tri[:, 0] * n + tri[:, 1]) * n + tri[:, 2]
            self.cocycles2 = sp.csr_matrix((0, len(tri)), dtype=np.int8)
            self.cycles2 = sp.csc_matrix((len(tri), 0), dtype=np.int8)
        vals = _rank_values(weights)
        D = _graph(n, edges, vals)
        two = max_dim >= 2 and len(self.tri_keys) > 0
        res = ripser(D, distance_matrix=True, maxdim=2 if two else 1, do_cocycles=(want == "cocycles" or two))
        dgm = res["dgms"][1]
        ess = np.isinf(dgm[:, 1])
        if want == "cocycles":
            self.cocycles = self._essential(res, 1, keys)
        else:
            by_val = np.argsort(vals)
            self.cycle_edges = by_val[np.searchsorted(vals[by_val], dgm[ess, 0])]
            self._vals = vals
        if not two:
            return
        cocycles2 = self._essential(res, 2, self.tri_keys)
        if want == "cocycles":
            self.cocycles2 = cocycles2
        elif cocycles2.shape[0]:
            self.cycles2 = _h2_cycle_basis(tri, vals, keys, n, cocycles2)

    def _essential(self, res: dict, dim: int, simplex_keys: np.ndarray) -> sp.csr_matrix:
        """Ripser's essential cocycles of ``dim`` as a sparse (b, S) 0/1 matrix over ``simplex_keys``."""
        ess = np.flatnonzero(np.isinf(res["dgms"][dim][:, 1]))
        cocs = [np.asarray(res["cocycles"][dim][i], dtype=np.int64).reshape(-1, dim + 2) for i in ess]
        if not cocs:
            return sp.csr_matrix((0, len(simplex_keys)), dtype=np.int8)
        rows = np.repeat(np.arange(len(cocs)), [len(c) for c in cocs])
        c = np.concatenate(cocs)
        odd = c[:, dim + 1] % 2 == 1
        verts = np.sort(c[odd, : dim + 1], axis=1)
        key = np.zeros(len(verts), dtype=np.int64)
        for col in verts.T:
            key = key * self.n + col
        cols = np.searchsorted(simplex_keys, key)
        return sp.csr_matrix((np.ones(len(cols), np.int8), (rows[odd], cols)), shape=(len(cocs), len(simplex_keys)))

    @property
    def betti1(self) -> int:
        return max(self.cocycles.shape[0], len(self.cycle_edges))

    def _tree(self):
        """Minimum spanning forest in value order, rooted at a virtual vertex n.

        Returns
        -------
        paths : sparse (E, n + 1) 0/1 matrix
            Column x holds the tree edges from x up to its component's root
            (the root's edge to the virtual vertex is not an edge: empty for
            the roots).
        """
        n = self.n
        mst = minimum_spanning_tree(_graph(n, self.edges, self._vals)).tocoo()
        tree_keys = np.minimum(mst.row, mst.col).astype(np.int64) * n + np.maximum(mst.row, mst.col)
        tree_pos = np.searchsorted(self.keys, tree_keys)
        _, labels = connected_components(mst, directed=False)
        roots = np.unique(labels, return_index=True)[1]
        m = len(tree_pos)
        rows = np.concatenate([mst.row, np.full(len(roots), n)])
        cols = np.concatenate([mst.col, roots])
        eid = np.concatenate([tree_pos, np.full(len(roots), -1)])
        T = sp.coo_matrix((np.arange(1, m + len(roots) + 1), (rows, cols)), shape=(n + 1, n + 1)).tocsr()
        T = T + T.T
        order, pred = breadth_first_order(T, n, directed=False, return_predecessors=True)
        parent_edge = np.full(n + 1, -1, dtype=np.int64)
        ch = order[1:]
        parent_edge[ch] = eid[np.asarray(T[pred[ch], ch]).ravel().astype(np.int64) - 1]
        # walk every vertex up to its root at once, one level per pass
        x = np.arange(n)
        anc, alive = x.copy(), parent_edge[:n] >= 0
        path_rows, path_cols = [], []
        while alive.any():
            path_rows.append(parent_edge[anc[alive]])
            path_cols.append(x[alive])
            anc = np.where(alive, pred[anc], anc)
            alive &= parent_edge[anc] >= 0
        r = np.concatenate(path_rows) if path_rows else np.zeros(0, np.int64)
        c = np.concatenate(path_cols) if path_cols else np.zeros(0, np.int64)
        return sp.csc_matrix((np.ones(len(r), np.int8), (r, c)), shape=(len(self.keys), n + 1))

    def fundamental_cycles(self) -> sp.csc_matrix:
        """This complex's H1 basis cycles as a sparse (E, b1) 0/1 matrix over its edges (cached).

        Cycle j is edge ``cycle_edges[j] = (u, v)`` plus the tree path from u
        to v: the two root paths, whose common part cancels mod 2.
        """
        if not hasattr(self, "_cycles_cache"):
            paths = self._tree()
            e = self.edges[self.cycle_edges]
            b = len(self.cycle_edges)
            own = sp.csc_matrix((np.ones(b, np.int32), (self.cycle_edges, np.arange(b))), shape=(len(self.keys), b))
            Z = (paths[:, e[:, 0]].astype(np.int32) + paths[:, e[:, 1]] + own).tocsc()
            Z.data %= 2
            Z.eliminate_zeros()
            self._cycles_cache = Z
        return self._cycles_cache

    def fundamental_pairing(self, cocycles_keys: np.ndarray, cocycles) -> np.ndarray:
        """Evaluate cocycles (of a larger complex) on this complex's H1 basis cycles.

        Parameters
        ----------
        cocycles_keys : (E',) int64, sorted edge keys of the larger complex
        cocycles : (b', E') sparse or dense 0/1 matrix

        Returns
        -------
        (b', b1) sparse 0/1: entry (i, j) = <cocycle i, basis cycle j>
        """
        b = cocycles.shape[0]
        if b == 0 or len(self.cycle_edges) == 0:
            return sp.csc_matrix((b, len(self.cycle_edges)), dtype=np.int8)
        phi = sp.csr_matrix(cocycles)[:, np.searchsorted(cocycles_keys, self.keys)]  # values on this complex's edges
        return _mod2_product(phi, self.fundamental_cycles())


def fast_zigzag_barcode(zz: ZigzagComplexes, max_dim: int = 1) -> Barcode:
    """Zigzag persistence in dimensions ``0 .. max_dim`` (max 2) — our engine.

    Parameters
    ----------
    zz : ZigzagComplexes
    max_dim : {0, 1, 2}
        H2 lists the triangles of every complex (and ripser the tetrahedra
        of each on its own); H0 and H1 need only the edges.

    Returns
    -------
    Barcode
    """
    n, L = zz.n_points, zz.n_layers - 1
    want = {0: (None, None)}.get(max_dim, ("cocycles", "cycles"))
    hom = [
        _ComplexHomology(
            n, zz.edge_keys(t), zz.weights(t), want[t % 2], max_dim, zz.triangles(t) if max_dim >= 2 else None
        )
        for t in range(zz.length)
    ]
    intervals = []
    # H0: a component of K_{l,l+1} maps to the component of its vertices.
    dims0 = [h.n_comp for h in hom]
    back0, fwd0 = [], []
    for l in range(L):
        h = hom[2 * l + 1]
        reps = np.unique(h.labels, return_index=True)[1]  # one vertex per component
        back0.append([1 << int(x) for x in hom[2 * l].labels[reps]])
        fwd0.append([1 << int(x) for x in hom[2 * l + 2].labels[reps]])
    intervals += [(0, b, d) for b, d in decompose_zigzag_module(dims0, back0, fwd0)]
    if max_dim >= 1:
        dims1 = [h.betti1 for h in hom]
        back1, fwd1 = [], []
        for l in range(L):
            h = hom[2 * l + 1]
            for side, out in ((2 * l, back1), (2 * l + 2, fwd1)):
                out.append(_pack(h.fundamental_pairing(hom[side].keys, hom[side].cocycles)))
        intervals += [(1, b, d) for b, d in decompose_zigzag_module(dims1, back1, fwd1)]
    if max_dim >= 2:
        # H2: cocycles of K_l evaluated on the basis cycles of K_{l,l+1}.
        dims2 = [h.cocycles2.shape[0] if t % 2 == 0 else h.cycles2.shape[1] for t, h in enumerate(hom)]
        back2, fwd2 = [], []
        for l in range(L):
            h = hom[2 * l + 1]
            for side, out in ((hom[2 * l], back2), (hom[2 * l + 2], fwd2)):
                if side.cocycles2.shape[0] == 0 or h.cycles2.shape[1] == 0:
                    out.append([0] * h.cycles2.shape[1])
                    continue
                restricted = side.cocycles2[:, np.searchsorted(side.tri_keys, h.tri_keys)]  # K_{l,l+1} ⊆ K_l
                out.append(_pack(_mod2_product(restricted, h.cycles2)))
        intervals += [(2, b, d) for b, d in decompose_zigzag_module(dims2, back2, fwd2)]
    return Barcode.from_intervals(intervals, zz.n_layers)
