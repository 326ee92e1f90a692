"""Body keypoints drawn as the OpenPose-style map pose ControlNets were trained on.

The union ControlNet learned pose from OpenPose/DWPose maps: a black picture, the 18 OpenPose body points
as dots and 17 limbs between them, each in its fixed colour. ViTPose gives COCO's 17 keypoints; as DWPose
does, the neck (which COCO lacks) is the midpoint of the shoulders, present when both are, and the points
are reordered to OpenPose's. Limbs are ellipses at 60 % of their colour, points full colour, as DWPose's
``draw_bodypose`` has them; widths follow the picture's size (DWPose's 4 px at 512).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

#: A joint is drawn when its score passes this (DWPose's own threshold).
KEYPOINT_THRESHOLD = 0.3
#: COCO's shoulders (left, right): the neck is their midpoint.
_COCO_SHOULDERS = (5, 6)
#: For each OpenPose point, its COCO index (17: the neck, added after COCO's 17).
OPENPOSE_FROM_COCO = (0, 17, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
#: OpenPose's limbs as pairs of its points (0-based); the last two (ear to shoulder) are never drawn.
LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
    (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip
#: OpenPose's colours (RGB), one per point and per limb in the order above.
COLORS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
    (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip
#: Limbs are drawn at this share of their colour (DWPose: ``color * 0.6``).
LIMB_SHADE = 0.6
#: DWPose draws 4 px limbs and dots on its 512-pixel maps; wider pictures get proportionally wider ones.
_WIDTH_AT_512 = 4


def openpose_points(keypoints: np.ndarray, scores: np.ndarray) -> list[tuple[float, float] | None]:
    """COCO's 17 keypoints (x, y) and scores as OpenPose's 18 points (None: not sure enough to draw)."""
    left, right = _COCO_SHOULDERS
    coco: list[tuple[float, float] | None] = [
        (float(x), float(y)) if score > KEYPOINT_THRESHOLD else None
        for (x, y), score in zip(keypoints.tolist(), scores.tolist(), strict=True)
    ]
    shoulders = (coco[left], coco[right])
    neck = None
    if shoulders[0] is not None and shoulders[1] is not None:
        neck = ((shoulders[0][0] + shoulders[1][0]) / 2, (shoulders[0][1] + shoulders[1][1]) / 2)
    coco.append(neck)
    return [coco[index] for index in OPENPOSE_FROM_COCO]


def draw_pose_map(size: tuple[int, int], people: Sequence[list[tuple[float, float] | None]]) -> np.ndarray:
    """A black RGB picture of ``size`` (width, height) with each person's OpenPose skeleton on it."""
    import cv2
    import numpy as np

    width, height = size
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    stroke = max(1, round(_WIDTH_AT_512 * max(width, height) / 512))
    for points in people:
        for (start, end), color in zip(LIMBS, COLORS, strict=False):
            a, b = points[start], points[end]
            if a is None or b is None:
                continue
            center = (int((a[0] + b[0]) / 2), int((a[1] + b[1]) / 2))
            length = math.hypot(a[0] - b[0], a[1] - b[1])
            angle = math.degrees(math.atan2(a[1] - b[1], a[0] - b[0]))
            polygon = cv2.ellipse2Poly(center, (int(length / 2), stroke), int(angle), 0, 360, 1)
            shade = tuple(float(int(c * LIMB_SHADE)) for c in color)
            cv2.fillConvexPoly(canvas, np.asarray(polygon, dtype=np.int32), shade)
        for point, color in zip(points, COLORS, strict=True):
            if point is not None:
                cv2.circle(canvas, (int(point[0]), int(point[1])), stroke, color, thickness=-1)
    return canvas
