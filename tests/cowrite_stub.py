"""A deterministic candidate generator for co-writing tests (no model): its candidates are a
pure function of the request, so replays and reloads can be compared exactly."""
HANZI = "山水月花风云雨雪江天"


class StubGenerator:
    """Candidate ``j`` of a request with seed ``s``: lines of 5 characters from ``HANZI``
    (poems, scripts) or ``" s<s>c<j>u<u>."`` passages (stories); the first steering keyword is
    put first, banned characters are dropped; scores ``1 - j / 10``."""

    def __init__(self):
        self.requests = []

    def propose(self, req):
        self.requests.append(req)
        units = req.units or 2
        out = []
        for j in range(req.k):
            pieces = []
            for u in range(units):
                if req.kind == "story":
                    piece = f" s{req.seed}c{j}u{u}."
                else:
                    piece = "".join(HANZI[(req.seed * 7 + j * 3 + u + c) % len(HANZI)] for c in range(5))
                    if req.keywords:
                        piece = req.keywords[0] + piece[len(req.keywords[0]):]
                    for w in req.bans:
                        piece = piece.replace(w, "")
                    if req.kind == "script":
                        piece = f"ANNA: {piece}"
                pieces.append(piece)
            text = ("" if req.kind == "story" else "\n").join(pieces)
            out.append({"text": text, "report": {"safety": {"flagged": False, "spans": []}}, "score": round(1 - j / 10, 4)})
        return out
