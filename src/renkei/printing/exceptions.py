"""Why a paper intake was refused: a 422 with a Japanese and an English message for the upload itself,
403/429/503 before it is decoded; nothing is filed either way."""

from __future__ import annotations

from typing import ClassVar

from renkei.errors import DomainError, FieldProblem, Forbidden, InvalidInput, TooManyAttempts


class IntakeRefused(InvalidInput):
    code = "paper_intake_refused"
    message_ja = "取り込めませんでした"
    message_en = "The upload could not be filed"

    def __init__(self) -> None:
        super().__init__(self.message_en, fields=[FieldProblem("/file", self.message_ja, self.message_en)])


class UnreadableFile(IntakeRefused):
    code = "unreadable_file"
    message_ja = "画像またはPDFとして読み取れません（JPEG・PNG・PDFのみ）"
    message_en = "The file is not a readable JPEG, PNG or PDF"


class TooManyPages(IntakeRefused):
    code = "too_many_pages"
    message_ja = "ページ数が多すぎます（10ページまで）。用紙は1枚ずつ取り込んでください"
    message_en = "Too many pages (at most 10); file one form at a time"


class QrMissing(IntakeRefused):
    code = "qr_missing"
    message_ja = "QRコードが見つかりません。用紙の右上のQRコードが写るように撮影してください"
    message_en = "No QR code found; photograph the form with its QR code (top right) in view"


class QrUnreadable(IntakeRefused):
    code = "qr_unreadable"
    message_ja = "QRコードを読み取れません。明るい場所で、ぶれないように撮り直してください"
    message_en = "The QR code could not be read; take the photo again in good light without blur"


class QrInvalid(IntakeRefused):
    code = "qr_invalid"
    message_ja = "このQRコードは本システムで印刷された用紙のものではありません（改ざんまたは他施設の用紙）"
    message_en = "This QR code was not printed by this installation (altered, or another installation's form)"


class QrAmbiguous(IntakeRefused):
    code = "qr_ambiguous"
    message_ja = "複数の用紙のQRコードが写っています。1枚ずつ取り込んでください"
    message_en = "QR codes of several printouts are in view; file one form at a time"


class NotFileable(IntakeRefused):
    code = "form_not_fileable"
    message_ja = "この用紙は記録として取り込めません（救急医療情報カードなど、控えとして印刷した用紙です）"
    message_en = "This printout cannot be filed as a record (an emergency card and the like are copies)"


class PatientRequired(IntakeRefused):
    code = "patient_required"
    message_ja = "患者名のない用紙です。どの患者の記録か選んでください"
    message_en = "This form was printed without a patient; choose the patient it belongs to"


class PatientMismatch(IntakeRefused):
    code = "patient_mismatch"
    message_ja = "選んだ患者と用紙の患者が一致しません"
    message_en = "The chosen patient is not the patient this form was printed for"


class IntakeNotAllowed(Forbidden):
    code = "paper_intake_not_allowed"
    detail_default = (
        "You may not file records on any patient, so there is nothing to file this on "
        "(記録を登録できる患者がいないため取り込めません)"
    )


class IntakeRateLimited(TooManyAttempts):
    code = "paper_intake_rate_limited"
    detail_default = "Too many paper forms filed in a short time; try again later (しばらくしてから再度お試しください)"

    def __init__(self, *, retry_after: int) -> None:
        super().__init__(headers={"Retry-After": str(retry_after)})


class IntakeBusy(DomainError):
    status: ClassVar[int] = 503
    code: ClassVar[str] = "paper_intake_busy"
    detail_default: ClassVar[str] = (
        "Other paper forms are being read right now; try again in a moment (混み合っています。少し待って再度お試しください)"
    )

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "5"})


class ConsentFormUnbound(IntakeRefused):
    code = "consent_form_unbound"
    message_ja = ("この同意書は記録された同意に結び付いていません。同意を記録してから取り込むか、"
                  "同意の画面から署名済みの用紙を登録してください")
    message_en = ("This consent form belongs to no recorded consent: record the consent first, or add the "
                  "signed form on the consent screen")


class WithdrawalNotRecorded(IntakeRefused):
    code = "withdrawal_not_recorded"
    message_ja = ("この同意はまだ撤回されていません。同意の画面で撤回を記録してから、署名済みの"
                  "同意撤回書を取り込んでください")
    message_en = ("This consent has not been withdrawn yet: record the withdrawal on the consent screen, "
                  "then file the signed withdrawal form")


class ConsentNotCurrent(IntakeRefused):
    code = "consent_not_current"
    message_ja = ("この用紙を印刷した同意は、その後の同意に置き換えられたか撤回されています。"
                  "最新の同意で印刷し直してください")
    message_en = ("The consent this form was printed for has since been replaced or withdrawn; print the "
                  "form again for the current consent")
