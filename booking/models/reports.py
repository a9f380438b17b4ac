"""Tables of the reports area: the settings of the open-sharing assessment
programmes (开放共享评价考核).

A programme's threshold, benchmark hours and reporting limit are data: a row
here per programme and version (``effective_from``); a report of year Y uses
the latest version in force on 1 Jan of Y. Without any row for a programme
the defaults of ``booking/data/assessment_programmes.json`` apply (national
500,000 CNY, Shanxi 200,000 CNY, 1,400 h / 800 h, 30 working days).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from booking.models.base import Base, utcnow


class AssessmentProgramme(Base):
    __tablename__ = "assessment_programmes"
    __table_args__ = (
        UniqueConstraint("code", "effective_from", name="uq_assessment_programmes_code_from"),
        CheckConstraint("threshold >= 0", name="threshold_not_negative"),
        CheckConstraint("quota_hours > 0 AND special_quota_hours > 0", name="quota_hours_positive"),
        CheckConstraint("report_within_working_days >= 1", name="report_limit_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20))
    name_zh: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(160))
    threshold: Mapped[Decimal]
    # Benchmark effective hours a year (定额机时), general and special-purpose.
    quota_hours: Mapped[int] = mapped_column(default=1400)
    special_quota_hours: Mapped[int] = mapped_column(default=800)
    report_within_working_days: Mapped[int] = mapped_column(default=30)
    resource_kinds: Mapped[list] = mapped_column(JSON, default=lambda: ["instrument"])
    funding_sources: Mapped[list] = mapped_column(JSON, default=lambda: ["government"])
    effective_from: Mapped[date]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
