"""Timeline errors, each with its status and stable code."""

from __future__ import annotations

from renkei.errors import Conflict, Forbidden, PreconditionFailed, PreconditionRequired


class EntryImmutable(Conflict):
    code = "entry_immutable"
    detail_default = "Posted entries cannot be edited; amend them instead"


class EntryNotCurrent(Conflict):
    code = "entry_not_current"
    detail_default = "A newer version of this entry exists"


class EntryEnteredInError(Conflict):
    code = "entry_entered_in_error"
    detail_default = "This entry is marked as entered in error"


class DraftNotPosted(Conflict):
    code = "draft_not_posted"
    detail_default = "This draft has not been posted"


class NotAuthor(Forbidden):
    code = "not_author"
    detail_default = "Only the author can change this entry"


class NotARecipient(Forbidden):
    code = "not_a_recipient"
    detail_default = "This entry is not addressed to you or your organisation"


class StaleVersion(PreconditionFailed):
    code = "stale_version"
    detail_default = "The entry has changed since you loaded it"


class IfMatchRequired(PreconditionRequired):
    code = "if_match_required"
    detail_default = "Send the entry's ETag in If-Match"


class PaperAlreadyTranscribed(Conflict):
    code = "paper_already_transcribed"
    detail_default = "This paper form has already been transcribed (この用紙はすでに転記されています)"


class PaperEntryNotAmendable(Conflict):
    code = "paper_entry_not_amendable"
    detail_default = (
        "A paper entry is the image of the form: transcribe it into a new entry instead of amending it "
        "(紙の記録は訂正できません。「転記する」から記録してください)"
    )
