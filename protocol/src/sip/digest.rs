//! TEMPORARY stub until the digest module lands.
#![allow(missing_docs, dead_code)]
#[derive(Debug, Clone, Copy)]
pub struct Challenge<'a> {
    pub realm: &'a str,
}
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    pub username: &'a str,
}
#[derive(Debug)]
pub struct E;
impl E {
    pub fn offset(&self) -> usize {
        0
    }
    pub fn reason(&self) -> &'static str {
        "stub"
    }
}
impl<'a> Challenge<'a> {
    pub fn parse(s: &'a str) -> Result<Self, E> {
        Ok(Challenge { realm: s })
    }
}
impl<'a> Credentials<'a> {
    pub fn parse(s: &'a str) -> Result<Self, E> {
        Ok(Credentials { username: s })
    }
}
