"""Why a paper intake was refused: each a 422 with a Japanese and an English message, nothing filed."""

from __future__ import annotations

from renkei.errors import FieldProblem, InvalidInput


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
    message_ja = "この用紙は記録として取り込めません（同意書は同意の画面から登録してください）"
    message_en = "This printout cannot be filed as a record (file signed consent forms from the consent screen)"


class PatientRequired(IntakeRefused):
    code = "patient_required"
    message_ja = "患者名のない用紙です。どの患者の記録か選んでください"
    message_en = "This form was printed without a patient; choose the patient it belongs to"


class PatientMismatch(IntakeRefused):
    code = "patient_mismatch"
    message_ja = "選んだ患者と用紙の患者が一致しません"
    message_en = "The chosen patient is not the patient this form was printed for"
