//! One envelope for every paged list, `{items, total, page, page_size}`, and the same two query
//! parameters for every one: `page` (1-based) and `page_size` (default 20, at most 100).
//!
//! Lists whose items are configuration-sized (skills, teams, agents, policies, rules, a ticket's
//! comments) are read whole from their projection and paged here; the ticket list and search
//! page in SQL.

use poem_openapi::Object;
use poem_openapi::types::{ParseFromJSON, ToJSON};

/// The page a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    /// 1-based.
    pub page: i64,
    pub page_size: i64,
}

impl Paging {
    pub fn new(page: i64, page_size: i64) -> Self {
        Self { page, page_size }
    }

    /// How many items come before this page.
    fn skip(self) -> usize {
        usize::try_from((self.page - 1).saturating_mul(self.page_size)).unwrap_or(usize::MAX)
    }
}

/// A page of a list.
#[derive(Debug, Clone, Object)]
pub struct Page<T: ParseFromJSON + ToJSON> {
    pub items: Vec<T>,
    /// Items in the whole list.
    pub total: i64,
    pub page: i64,
    pub page_size: i64,
}

impl<T: ParseFromJSON + ToJSON> Page<T> {
    /// A page read as a page (in SQL), with the whole list's `total`.
    pub fn read<V: Into<T>>(items: Vec<V>, total: i64, paging: Paging) -> Self {
        Page {
            items: items.into_iter().map(Into::into).collect(),
            total,
            page: paging.page,
            page_size: paging.page_size,
        }
    }

    /// The page `paging` asks for of the whole list `all`, each item shown as `T`.
    pub fn of<V: Into<T>>(all: Vec<V>, paging: Paging) -> Self {
        let total = i64::try_from(all.len()).unwrap_or(i64::MAX);
        let take = usize::try_from(paging.page_size).unwrap_or(0);
        Page {
            items: all
                .into_iter()
                .skip(paging.skip())
                .take(take)
                .map(Into::into)
                .collect(),
            total,
            page: paging.page,
            page_size: paging.page_size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_a_slice_of_the_whole_with_the_whole_counted() {
        let all: Vec<i64> = (1..=45).collect();
        let second = Page::<i64>::of(all.clone(), Paging::new(2, 20));
        assert_eq!(second.items, (21..=40).collect::<Vec<_>>());
        assert_eq!((second.total, second.page, second.page_size), (45, 2, 20));
        let last = Page::<i64>::of(all.clone(), Paging::new(3, 20));
        assert_eq!(last.items, (41..=45).collect::<Vec<_>>());
        let past = Page::<i64>::of(all, Paging::new(9, 20));
        assert!(past.items.is_empty());
        assert_eq!(past.total, 45);
    }
}
