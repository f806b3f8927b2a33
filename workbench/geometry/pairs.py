"""Overlap of chosen pairs of boxes, as NMS compares them: :class:`PairOverlap` (OpenCV's
IoU bit for bit, or DIoU), :class:`PairGrid` (a uniform grid listing each pair of boxes
whose overlap can exceed a threshold) and :class:`PairStrips` (the boxes that can overlap
a given one above a threshold: one run of an array sorted by strip, then centre x).
Used by ``workbench.geometry.nms``; ``workbench.geometry.boxes`` offers the three names too.
"""

from __future__ import annotations

import numpy as np

from workbench.geometry.arrays import as_boxes, safe_div

_EPS = np.finfo(np.float64).eps
# PairGrid entry groups, indexed by 2 * starts_in_column + starts_in_row.
_GROUP_OF = np.array([3, 2, 0, 1], np.int64)
# Groups a member looks at in one of its cells, by 2 * (not its first column) + (not its
# first row): a contiguous run [first, first + len) of the order column-only, both, row-only,
# neither.
_GROUPS_FIRST = np.array([0, 1, 0, 1], np.int64)
_GROUPS_LEN = np.array([4, 2, 2, 1], np.int64)


def _repeat_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + l)`` for every (s, l), without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    offsets = np.cumsum(lengths) - lengths
    return np.arange(total, dtype=np.int64) + np.repeat(starts - offsets, lengths)


class PairOverlap:
    """Overlap of chosen pairs of xyxy boxes, as NMS compares them.

    ``criterion="opencv"`` reproduces ``cv2.dnn`` ``rectOverlap`` bit for bit: the Rect2d
    intersection arithmetic, the IoU rounded to float32, and 1 for two empty boxes.
    ``criterion="diou"`` is IoU - d^2 / c^2 in float64.
    """

    def __init__(self, boxes_xyxy: np.ndarray, criterion: str = "opencv") -> None:
        if criterion not in ("opencv", "diou"):
            raise ValueError(f"unknown overlap criterion {criterion!r}")
        b = as_boxes(boxes_xyxy, ordered=True)
        self.criterion = criterion
        self.n = b.shape[0]
        self.x1, self.y1, self.x2, self.y2 = (np.ascontiguousarray(b[:, k]) for k in range(4))
        self.w = self.x2 - self.x1
        self.h = self.y2 - self.y1
        self.area = self.w * self.h
        # Boxes that OpenCV would call identical to any other such box (areas sum <= DBL_EPS).
        self.tiny = self.area <= _EPS if criterion == "opencv" else np.zeros(self.n, bool)

    def overlap(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Overlap of boxes ``a[k]`` and ``b[k]`` (index arrays of equal length)."""
        if self.criterion == "diou":
            return self._diou(a, b)
        xa, xb, wa, wb = self.x1[a], self.x1[b], self.w[a], self.w[b]
        ya, yb, ha, hb = self.y1[a], self.y1[b], self.h[a], self.h[b]
        # OpenCV's Rect_ operator&: width = min(left.w - (right.x - left.x), right.w).
        a_left = xa < xb
        iw = np.minimum(np.where(a_left, wa, wb) - np.abs(xa - xb), np.where(a_left, wb, wa))
        a_top = ya < yb
        ih = np.minimum(np.where(a_top, ha, hb) - np.abs(ya - yb), np.where(a_top, hb, ha))
        empty = (iw <= 0) | (ih <= 0) | (wa <= 0) | (ha <= 0) | (wb <= 0) | (hb <= 0)
        inter = np.where(empty, 0.0, iw * ih)
        total = self.area[a] + self.area[b]
        with np.errstate(divide="ignore", invalid="ignore"):
            distance = (1.0 - inter / (total - inter)).astype(np.float32)
        out = np.float32(1) - distance
        return np.where(total <= _EPS, np.float32(1), out)

    def fast_overlap(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``overlap`` by plain float64 arithmetic, cheaper and equal to within ~1e-7.

        For "opencv" the rounding differs from OpenCV's only in the last bits of the
        intersection width, so a caller needs ``overlap`` only for values next to a threshold.
        """
        x1a, y1a, x1b, y1b = self.x1[a], self.y1[a], self.x1[b], self.y1[b]
        iw = np.minimum(self.x2[a], self.x2[b]) - np.maximum(x1a, x1b)
        ih = np.minimum(self.y2[a], self.y2[b]) - np.maximum(y1a, y1b)
        inter = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
        total = self.area[a] + self.area[b]
        iou = safe_div(inter, total - inter)
        if self.criterion == "opencv":
            iou[total <= _EPS] = 1.0
            return iou
        cw = np.maximum(self.x2[a], self.x2[b]) - np.minimum(x1a, x1b)
        ch = np.maximum(self.y2[a], self.y2[b]) - np.minimum(y1a, y1b)
        d2 = ((x1a + self.x2[a] - x1b - self.x2[b]) ** 2
              + (y1a + self.y2[a] - y1b - self.y2[b]) ** 2) / 4
        return iou - safe_div(d2, cw**2 + ch**2)

    def _diou(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        x1a, y1a, x2a, y2a = self.x1[a], self.y1[a], self.x2[a], self.y2[a]
        x1b, y1b, x2b, y2b = self.x1[b], self.y1[b], self.x2[b], self.y2[b]
        iw = np.clip(np.minimum(x2a, x2b) - np.maximum(x1a, x1b), 0, None)
        ih = np.clip(np.minimum(y2a, y2b) - np.maximum(y1a, y1b), 0, None)
        inter = iw * ih
        union = self.area[a] + self.area[b] - inter
        cw = np.maximum(x2a, x2b) - np.minimum(x1a, x1b)
        ch = np.maximum(y2a, y2b) - np.minimum(y1a, y1b)
        d2 = ((x1a + x2a - x1b - x2b) ** 2 + (y1a + y2a - y1b - y2b) ** 2) / 4
        return safe_div(inter, union) - safe_div(d2, cw**2 + ch**2)


class PairGrid:
    """Finds the pairs of boxes whose overlap can exceed a threshold, through a uniform grid.

    IoU > t >= 0 implies that the two boxes, each shrunk about its centre by the factor 1 - t,
    still intersect (the intersection width is > t * max(w_a, w_b) and at most
    (w_a + w_b) / 2 - |centre distance|; likewise in y). So only shrunk boxes are entered in the
    grid, in every cell they cover; two of them that intersect share the cell of the top-left
    corner of their intersection, and the pair is reported from that cell only. Boxes OpenCV
    treats as identical when both are empty are paired with each other directly.
    ``dense=True`` pairs every box with every later box (small inputs, negative thresholds).
    ``boxes`` (sorted indices) enters only those boxes, e.g. the ones still undecided.
    """

    def __init__(self, geo: PairOverlap, threshold: float = 0.0, dense: bool = False,
                 groups: np.ndarray | None = None, boxes: np.ndarray | None = None) -> None:
        self.geo = geo
        self.dense = dense or geo.n == 0 or threshold < 0
        self.none = threshold >= 1 and not self.dense   # overlap never exceeds 1
        self.enumerated = 0     # candidate entries looked at by the last pairs() call
        if not self.dense and not self.none:
            # A small slack keeps the bound safe against float rounding of the IoU.
            f = min(1.0, 1.0 - threshold + 1e-4) / 2
            cx, cy = (geo.x1 + geo.x2) / 2, (geo.y1 + geo.y2) / 2
            hw, hh = geo.w * f, geo.h * f
            if groups is not None and groups.size:
                # Classes side by side on one wide canvas: boxes of different classes never
                # share a cell, so class-aware NMS looks at no cross-class pair.
                span = float(geo.x2.max() - geo.x1.min()) + 1.0
                cx = cx + np.unique(groups, return_inverse=True)[1].reshape(-1) * span
            self.x1, self.x2, self.y1, self.y2 = cx - hw, cx + hw, cy - hh, cy + hh
            self.rebuild(np.arange(geo.n) if boxes is None else boxes)

    def refresh(self, alive: np.ndarray, start: int) -> None:
        """Re-grid the boxes still alive once most entries past ``start`` are dead.

        Entries before ``start`` (boxes already visited) cost nothing: lookups skip them.
        """
        if self.dense or self.none:
            return
        ahead = self.grid_boxes.size - int(np.searchsorted(self.grid_boxes, start))
        live = np.flatnonzero(alive)
        if live.size * 2 < ahead:
            if live.size <= 256:
                self.dense = True
            else:
                self.rebuild(live)

    def rebuild(self, boxes: np.ndarray) -> None:
        """Enter ``boxes`` (indices) in a fresh grid sized for them."""
        g = self.geo
        n = boxes.size
        self.grid_boxes = boxes
        x1, x2, y1, y2 = self.x1[boxes], self.x2[boxes], self.y1[boxes], self.y2[boxes]
        self.ox, self.oy = float(x1.min()), float(y1.min())
        ex = max(float(x2.max()) - self.ox, 0.0)
        ey = max(float(y2.max()) - self.oy, 0.0)
        sized = np.maximum(x2 - x1, y2 - y1)[~g.tiny[boxes]]
        sized = sized[:: max(1, sized.size // 1024)]   # a sample gives the median well enough
        size = float(np.median(sized)) if sized.size else 0.0
        # At most ~4 cells per box on average; at least one cell.
        size = max(size, np.sqrt(ex * ey / (4.0 * n)), max(ex, ey) / 4096.0, 1e-12)
        while True:
            self.size = size
            self.ncx = int(ex / size) + 1
            self.ncy = int(ey / size) + 1
            cx0, cx1 = self._cx(x1), self._cx(x2)
            cy0, cy1 = self._cy(y1), self._cy(y2)
            spanx = cx1 - cx0 + 1
            counts = spanx * (cy1 - cy0 + 1)
            if counts.sum() <= 8 * n + 4096:
                break
            size *= 2.0   # very large boxes: coarser cells keep the entries bounded
        first = np.cumsum(counts) - counts
        # Rows each box covers, then the cells of each row: no integer division needed.
        spany = cy1 - cy0 + 1
        row = _repeat_ranges(cy0, spany)
        row_cell0 = row * self.ncx + np.repeat(cx0, spany)     # first cell of each (box, row)
        row_span = np.repeat(spanx, spany)
        cells = _repeat_ranges(row_cell0, row_span)
        col_new = cells == np.repeat(row_cell0, row_span)      # the box's first column
        row_new = np.repeat(row == np.repeat(cy0, spany), row_span)   # the box's first row
        # Within a cell, entries are grouped by whether the box starts in that column and/or
        # row, in the order: column only, both, row only, neither (see ``pairs``).
        group = _GROUP_OF[col_new * 2 + row_new]
        keys = cells * 4 + group
        nkeys = self.ncx * self.ncy * 4
        # Stable sort of box-major entries keeps each group in visiting order, so the later
        # boxes of a group are a suffix found by one binary search. 16-bit keys sort in
        # linear time (numpy's radix sort).
        by_key = np.argsort(keys.astype(np.uint16) if nkeys <= 65536 else keys, kind="stable")
        self.box_cells = cells
        self.col0 = np.zeros(g.n, np.int64)
        self.row0 = np.zeros(g.n, np.int64)
        self.col0[boxes] = cx0
        self.row0[boxes] = cy0
        self.box_first = np.zeros(g.n, np.int64)
        self.box_count = np.zeros(g.n, np.int64)
        self.box_first[boxes] = first
        self.box_count[boxes] = counts
        self.cell_boxes = np.repeat(boxes, counts)[by_key]
        self.sorted_keys = keys[by_key] * g.n + self.cell_boxes
        self.group_start = np.zeros(nkeys + 1, np.int64)
        np.cumsum(np.bincount(keys, minlength=nkeys), out=self.group_start[1:])
        self.tiny_idx = boxes[g.tiny[boxes]]

    def _cx(self, x: np.ndarray) -> np.ndarray:
        # x >= ox by construction, so only the upper end needs clamping.
        return np.minimum(((x - self.ox) / self.size).astype(np.int64), self.ncx - 1)

    def _cy(self, y: np.ndarray) -> np.ndarray:
        return np.minimum(((y - self.oy) / self.size).astype(np.int64), self.ncy - 1)

    def pairs(self, members: np.ndarray, alive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(src, dst) with src in ``members``, dst > src and ``alive[dst]``, that may overlap."""
        if self.dense:
            return _later_pairs(members, np.flatnonzero(alive))
        if self.none:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        g = self.geo
        cnt = self.box_count[members]
        entry = _repeat_ranges(self.box_first[members], cnt)
        src_e = np.repeat(members, cnt)
        cell_e = self.box_cells[entry]
        # A pair is reported only from the cell of the top-left corner of the two boxes'
        # intersection: there, each box either starts (first column / first row) or, if not,
        # the other one does. So from a member's cell, look only at the groups that can hold
        # such partners: all four in its first cell, "starts in this column" in the rest of
        # its first row, "starts in this row" in the rest of its first column, "starts in both"
        # elsewhere. Every pair is then seen exactly once.
        kind = ((cell_e % self.ncx != self.col0[src_e]) * 2
                + (cell_e // self.ncx != self.row0[src_e]))
        glen = _GROUPS_LEN[kind]
        group = _repeat_ranges(_GROUPS_FIRST[kind], glen)
        gkey = np.repeat(cell_e * 4, glen) + group
        qsrc = np.repeat(src_e, glen)
        lo = self.group_start[gkey]
        hi = self.group_start[gkey + 1]
        if int((hi - lo).sum()) > 8 * gkey.size:
            # Crowded cells: a binary search skips the boxes visited before each member.
            lo = np.searchsorted(self.sorted_keys, gkey * g.n + qsrc, side="right")
            num = np.maximum(hi - lo, 0)
            dst = self.cell_boxes[_repeat_ranges(lo, num)]
            keep = alive[dst]
        else:
            # Sparse cells: cheaper to look at every box and drop the earlier ones.
            num = hi - lo
            dst = self.cell_boxes[_repeat_ranges(lo, num)]
            keep = alive[dst] & (dst > np.repeat(qsrc, num))
        self.enumerated = dst.size
        src, dst = np.repeat(qsrc, num)[keep], dst[keep]
        if self.tiny_idx.size:
            keep = ~(g.tiny[src] & g.tiny[dst])
            src, dst = src[keep], dst[keep]
        tiny_members = members[g.tiny[members]]
        if tiny_members.size:
            tiny_alive = self.tiny_idx[alive[self.tiny_idx]]
            ts, td = _later_pairs(tiny_members, tiny_alive)
            src, dst = np.concatenate([src, ts]), np.concatenate([dst, td])
        return src, dst


class PairStrips:
    """The boxes that can overlap a given box above a threshold ``0 < t < 1``: one array run.

    Overlap > t needs the boxes shrunk by 1 - t about their centres to intersect (see
    PairGrid): |dcx| < f * (w_a + w_b) and |dcy| < f * (h_a + h_b), f = (1 - t) / 2. The plane
    is cut into horizontal strips; each box is entered in every strip that its y reach
    (f * h + f * max h about its centre) touches, at most two, sorted by strip then centre x.
    A box's partners all lie in the strip holding its centre, in one run ``window(i)`` found
    by two binary searches, so the caller works on array slices, not gathers.

    Per entry: ``box_of`` (the box), ``table`` (rows x1, y1, x2, y2, area; ``columns`` is the
    same per box) and ``weight`` (area times ``weight``). Empty boxes, which OpenCV pairs
    wherever they are, are not supported: callers use PairGrid for them.
    """

    def __init__(self, geo: PairOverlap, threshold: float, weight: float = 1.0) -> None:
        if not 0 < threshold < 1 or geo.tiny.any():
            raise ValueError("PairStrips needs 0 < threshold < 1 and no empty boxes")
        n = geo.n
        self.f = f = min(1.0, 1.0 - threshold + 1e-4) / 2    # the slack covers float rounding
        cx, cy = (geo.x1 + geo.x2) * 0.5, (geo.y1 + geo.y2) * 0.5
        self.centre = np.stack([cx, cy, geo.w])
        # Row-major per quantity: ``take`` along axis 1 gathers all five at once, fast.
        self.columns = np.stack([geo.x1, geo.y1, geo.x2, geo.y2, geo.area])
        self.reach_x = f * float(geo.w.max()) + 1e-9
        reach = geo.h * f
        reach += f * float(geo.h.max()) + 1e-9
        bottom = cy - reach
        self.y0 = float(bottom.min())
        # Strips as tall as the tallest reach span, so a box touches at most two of them
        # (the 1e-9 margin is far above the rounding of the strip numbers); at most 2**30
        # strips, so that the keys fit in 64 bits.
        self.height = max(2.0 * float(reach.max()) * (1 + 1e-9),
                          (float((cy + reach).max()) - self.y0) / 2**30, 1e-300)
        bottom -= self.y0
        bottom /= self.height
        strip = bottom.astype(np.int64)
        reach += cy
        reach -= self.y0
        reach /= self.height
        two = np.flatnonzero(reach.astype(np.int64) > strip)
        strips = int(strip.max()) + 2
        # Centre x in as many bits as fit beside the strip in a 16-bit key (radix sort).
        self.xbits = xbits = max(10, 16 - (strips - 1).bit_length())
        self.x0 = float(cx.min())
        span = float(cx.max()) - self.x0
        self.xmax = (1 << xbits) - 1
        self.scale = self.xmax / span if span > 0 else 0.0
        key = ((cx - self.x0) * self.scale).astype(np.int64)
        key += strip << xbits
        key = np.concatenate([key, key[two] + (1 << xbits)])
        small = strips << xbits <= 65536
        order = np.argsort(key.astype(np.uint16) if small else key,
                           kind="stable" if small else None)
        self.keys = key[order]
        self.box_of = np.concatenate([np.arange(n), two])[order]
        self.table = self.columns.take(self.box_of, axis=1)
        self.weight = self.table[4] * weight

    def window(self, i: int) -> tuple[int, int]:
        """[lo, hi) of the entries that may overlap box ``i`` above the threshold."""
        kcx, kcy, kw = self.centre[:, i].tolist()
        rx = self.f * kw + self.reach_x
        base = int((kcy - self.y0) / self.height) << self.xbits
        # int() truncates toward zero: a floor here, as negative values are clamped to 0.
        qa = max(int((kcx - rx - self.x0) * self.scale), 0)
        qb = min(int((kcx + rx - self.x0) * self.scale), self.xmax)
        return (int(self.keys.searchsorted(base + qa)),
                int(self.keys.searchsorted(base + qb, "right")))


def _later_pairs(members: np.ndarray, pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (m, p) with m in ``members``, p in sorted ``pool`` and p > m."""
    first = np.searchsorted(pool, members, side="right")
    num = pool.size - first
    return np.repeat(members, num), pool[_repeat_ranges(first, num)]
