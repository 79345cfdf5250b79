"""Wallets: a tenant's credits, its transactions and its members' budgets (sub-wallets).

A tenant is **metered** once it has a wallet (an admin's first top-up or policy change opens
it); without one its usage is still ledgered and priced, but nothing is charged or refused, so
installations that do not bill behave as before.

The balance is changed only together with a :class:`~store.models.WalletTransaction` of the
same amount, with an atomic ``UPDATE ... SET balance = balance + :amount`` (never
read-modify-write: the scheduler's charges and an admin's top-up may commit concurrently), so
the transactions always sum to the balance. Members' budgets count what each member spent
(charges less refunds) against a ceiling their tenant admin sets.

**Credit limit.** Prepaid tenants (``industry``) cannot go below 0; postpaid ones
(``academic``, ``government``) down to ``-credit_limit``. A submission is refused (402) when
the available credit (``balance + credit_limit``) is not positive, or the member's budget is
spent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, ScalarSelect, func, or_, select, update
from sqlalchemy.orm import Session

from quotas.money import Rate, format_credits
from store import tenants
from store.common import as_utc, decode_cursor, encode_cursor, utcnow
from store.errors import InvalidRequest, NotFound, PaymentRequired
from store.models import Flavor, MemberBudget, Tenant, Wallet, WalletTransaction
from store.prices import POSTPAID_KINDS, price_book

TRANSACTION_KINDS = ("topup", "adjustment", "charge", "refund")
ADMIN_KINDS = ("topup", "adjustment")
"""Kinds a platform admin records by hand; charges and refunds come from the ledger."""
ON_EXHAUSTED = ("finish", "stop")


@dataclass(frozen=True, slots=True)
class WalletView:
    tenant: str
    kind: str
    metered: bool
    balance: int
    credit_limit: int
    on_exhausted: str
    require_cover: bool
    members: Sequence[MemberBudget]

    @property
    def available(self) -> int:
        return self.balance + self.credit_limit


@dataclass(frozen=True, slots=True)
class TransactionPage:
    items: Sequence[WalletTransaction]
    next_cursor: str | None


def view(session: Session, tenant: str) -> WalletView:
    row = tenants.get_tenant(session, tenant)
    # populate_existing: the balance moves by SQL UPDATEs, never through the loaded object.
    wallet = session.get(Wallet, tenant, populate_existing=True)
    members = session.scalars(
        select(MemberBudget)
        .where(MemberBudget.tenant == tenant)
        .order_by(MemberBudget.user)
        .execution_options(populate_existing=True)
    ).all()
    if wallet is None:
        return WalletView(tenant, row.kind, False, 0, 0, "finish", False, members)
    return WalletView(
        tenant,
        row.kind,
        True,
        wallet.balance,
        wallet.credit_limit,
        wallet.on_exhausted,
        wallet.require_cover,
        members,
    )


def open_wallet(session: Session, tenant: str) -> Wallet:
    """The tenant's wallet, opened (empty) if it has none: the tenant is metered from now on."""
    tenants.get_tenant(session, tenant)
    wallet = session.get(Wallet, tenant)
    if wallet is None:
        wallet = Wallet(
            tenant=tenant,
            balance=0,
            credit_limit=0,
            on_exhausted="finish",
            require_cover=False,
            updated_at=utcnow(),
        )
        session.add(wallet)
        session.flush()
    return wallet


def record(
    session: Session,
    tenant: str,
    kind: str,
    amount: int,
    *,
    actor: str = "",
    note: str = "",
    user: str | None = None,
    at: datetime | None = None,
) -> WalletTransaction:
    """Move ``amount`` micro-credits into (or, negative, out of) an open wallet, with its
    transaction, atomically."""
    if kind not in TRANSACTION_KINDS:
        raise InvalidRequest(f"unknown transaction kind {kind!r}", field="body.kind")
    when = at or utcnow()
    entry = WalletTransaction(
        tenant=tenant, user=user, kind=kind, amount=amount, at=when, actor=actor, note=note
    )
    session.add(entry)
    session.execute(
        update(Wallet)
        .where(Wallet.tenant == tenant)
        .values(balance=Wallet.balance + amount, updated_at=when)
        .execution_options(synchronize_session=False)
    )
    if user is not None and kind in ("charge", "refund"):
        session.execute(
            update(MemberBudget)
            .where(MemberBudget.tenant == tenant, MemberBudget.user == user)
            .values(spent=MemberBudget.spent - amount)
            .execution_options(synchronize_session=False)
        )
    session.flush()
    return entry


def credit(
    session: Session, tenant: str, kind: str, amount: int, *, actor: str, note: str = ""
) -> WalletTransaction:
    """A platform admin's top-up or adjustment (opens the wallet if needed)."""
    if kind not in ADMIN_KINDS:
        raise InvalidRequest(
            f"only {' and '.join(ADMIN_KINDS)} are recorded by hand; charges and refunds come "
            "from the usage ledger",
            field="body.kind",
        )
    if kind == "topup" and amount <= 0:
        raise InvalidRequest("a top-up must be positive", field="body.amount")
    open_wallet(session, tenant)
    return record(session, tenant, kind, amount, actor=actor, note=note)


def set_policy(
    session: Session,
    tenant: str,
    *,
    credit_limit: int | None = None,
    on_exhausted: str | None = None,
    require_cover: bool | None = None,
) -> Wallet:
    kind = tenants.get_tenant(session, tenant).kind
    if credit_limit is not None:
        if credit_limit < 0:
            raise InvalidRequest("the credit limit cannot be negative", field="body.credit_limit")
        if credit_limit > 0 and kind not in POSTPAID_KINDS:
            raise InvalidRequest(
                f"tenant {tenant!r} is {kind}: prepaid tenants cannot go below 0 (credit limit "
                "0); only academic and government tenants pay after use",
                field="body.credit_limit",
            )
    if on_exhausted is not None and on_exhausted not in ON_EXHAUSTED:
        raise InvalidRequest(f"unknown policy {on_exhausted!r}", field="body.on_exhausted")
    wallet = open_wallet(session, tenant)
    if credit_limit is not None:
        wallet.credit_limit = credit_limit
    if on_exhausted is not None:
        wallet.on_exhausted = on_exhausted
    if require_cover is not None:
        wallet.require_cover = require_cover
    wallet.updated_at = utcnow()
    session.flush()
    return wallet


def set_member_budget(session: Session, tenant: str, user: str, budget: int) -> MemberBudget:
    if budget < 0:
        raise InvalidRequest("a budget cannot be negative", field="body.budget")
    open_wallet(session, tenant)
    row = session.get(MemberBudget, (tenant, user))
    if row is None:
        row = MemberBudget(tenant=tenant, user=user, budget=budget, spent=0)
        session.add(row)
    row.budget = budget
    session.flush()
    return row


def delete_member_budget(session: Session, tenant: str, user: str) -> None:
    row = session.get(MemberBudget, (tenant, user))
    if row is None:
        raise NotFound(f"member {user!r} of tenant {tenant!r} has no budget")
    session.delete(row)


def transactions(
    session: Session, tenant: str, *, limit: int = 50, cursor: str | None = None
) -> TransactionPage:
    """Newest first."""
    tenants.get_tenant(session, tenant)
    query = (
        select(WalletTransaction)
        .where(WalletTransaction.tenant == tenant)
        .order_by(WalletTransaction.id.desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        try:
            query = query.where(WalletTransaction.id < decode_cursor(cursor))
        except ValueError as error:
            raise InvalidRequest("invalid cursor", field="query.cursor") from error
    rows = session.scalars(query).all()
    items = rows[:limit]
    return TransactionPage(items, encode_cursor(items[-1].id) if len(rows) > limit else None)


@dataclass(frozen=True, slots=True)
class CreditFacts:
    """What the submission check needs, read with the other submit facts in one round trip
    (:func:`credit_columns`): ``None`` fields when there is no wallet or no budget."""

    balance: int | None = None
    credit_limit: int | None = None
    budget: int | None = None
    spent: int | None = None


def credit_columns(
    tenant: BindParameter[str], user: BindParameter[str]
) -> tuple[ScalarSelect[Any], ...]:
    """Scalar subqueries of :class:`CreditFacts`, in its field order, for the submit facts."""
    wallet = select(Wallet).where(Wallet.tenant == tenant)
    budget = select(MemberBudget).where(MemberBudget.tenant == tenant, MemberBudget.user == user)
    return (
        wallet.with_only_columns(Wallet.balance).scalar_subquery(),
        wallet.with_only_columns(Wallet.credit_limit).scalar_subquery(),
        budget.with_only_columns(MemberBudget.budget).scalar_subquery(),
        budget.with_only_columns(MemberBudget.spent).scalar_subquery(),
    )


def check_credit(tenant: str, user: str, facts: CreditFacts) -> None:
    """Refuse (:class:`PaymentRequired`) a submission to an exhausted wallet or budget."""
    if facts.balance is None:
        return  # not metered
    limit = facts.credit_limit or 0
    if facts.balance + limit <= 0:
        shown = f" (credit limit {format_credits(limit)})" if limit else ""
        raise PaymentRequired(
            f"tenant {tenant!r} has no credit left: balance {format_credits(facts.balance)} "
            f"credits{shown}; ask a platform admin for a top-up",
            field="wallet.balance",
            balance=format_credits(facts.balance),
        )
    if facts.budget is not None and (facts.spent or 0) >= facts.budget:
        spent = facts.spent or 0
        raise PaymentRequired(
            f"{user!r} has spent their budget in tenant {tenant!r}: "
            f"{format_credits(spent)} of {format_credits(facts.budget)} credits; ask a "
            "tenant admin to raise it",
            field="member_budget.balance",
            balance=format_credits(facts.budget - spent),
        )


def exhausted(session: Session, *, on_exhausted: str) -> set[str]:
    """Tenants with that policy whose available credit is gone."""
    rows = session.scalars(
        select(Wallet.tenant).where(
            Wallet.on_exhausted == on_exhausted, Wallet.balance + Wallet.credit_limit <= 0
        )
    )
    return set(rows)


@dataclass(frozen=True, slots=True)
class CreditGate:
    """A metered tenant the scheduler's admission must check (out of credit, or requiring
    cover), with the hourly price of each flavor for its kind."""

    tenant: str
    available: int
    require_cover: bool
    rates: dict[str, Rate]


def credit_gates(session: Session, now: datetime) -> list[CreditGate]:
    """One small query when no tenant is out of credit or requires cover (the usual case)."""
    rows = session.execute(
        select(
            Wallet.tenant,
            Wallet.balance + Wallet.credit_limit,
            Wallet.require_cover,
            Tenant.kind,
        )
        .join(Tenant, Tenant.name == Wallet.tenant)
        .where(or_(Wallet.balance + Wallet.credit_limit <= 0, Wallet.require_cover))
    ).all()
    if not rows:
        return []
    book = price_book(session) if any(cover for _t, _a, cover, _k in rows) else None
    flavors = list(session.scalars(select(Flavor.name))) if book is not None else []
    at = as_utc(now).timestamp()
    return [
        CreditGate(
            tenant,
            int(available),
            cover,
            {f: book.rate(f, kind, at) for f in flavors} if book is not None and cover else {},
        )
        for tenant, available, cover, kind in rows
    ]


def allocations(session: Session, start: datetime, end: datetime) -> dict[str, int]:
    """Credits allocated to each tenant in [start, end): the sum of its top-ups then."""
    rows = session.execute(
        select(WalletTransaction.tenant, func.sum(WalletTransaction.amount))
        .where(
            WalletTransaction.kind == "topup",
            WalletTransaction.at >= start,
            WalletTransaction.at < end,
        )
        .group_by(WalletTransaction.tenant)
    ).all()
    return {tenant: int(total) for tenant, total in rows}
